"""Init `source` strings are parsed in one place into a Source record."""
from xfer.inits.published import PUBLISHERS
from xfer.source import PUBLISHED_LIBRARIES, Source, parse_source


def test_each_kind_of_source_is_recognised():
    assert parse_source(None) == parse_source("") == Source("none")
    assert parse_source("stage:natural") == Source("stage", "natural")
    assert parse_source("torchvision:resnet18.IMAGENET1K_V1").library == "torchvision"
    assert parse_source("torchvision:resnet18.IMAGENET1K_V1").weights == "resnet18.IMAGENET1K_V1"
    assert parse_source("xrv").is_default_published and parse_source("xrv").weights == ""
    assert parse_source("runs/best.pt") == Source("file", "runs/best.pt")
    assert parse_source("other:thing.pt").kind == "file"


def test_source_prints_as_it_was_written():
    for text in ("stage:natural", "timm:resnet10t.c3_in1k", "xrv", "/tmp/a.pt", ""):
        assert str(parse_source(text)) == text


def test_published_libraries_are_the_weight_publishers():
    assert set(PUBLISHED_LIBRARIES) == set(PUBLISHERS)


def test_an_init_source_is_parsed_once_where_the_config_is_built_and_never_logged_twice():
    import dataclasses

    from xfer.config import InitConfig, flatten

    init = InitConfig("imagenet", source="stage:natural")
    assert (init.origin.kind, init.origin.name) == ("stage", "natural")
    moved = dataclasses.replace(init, source="/tmp/natural.pt")  # a stage resolved to its checkpoint
    assert moved.origin.kind == "file" and moved.name == "imagenet"
    assert flatten(init) == {"strategy": "imagenet", "source": "stage:natural", "label": None, "train": {}}, \
        "the parsed source is derived: not a param, not in reuse keys"
