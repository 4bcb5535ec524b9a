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
