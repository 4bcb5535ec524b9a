"""Config input is bounded (issue 25): a YAML alias bomb and a huge file are refused fast under a memory limit,
duplicate keys are named, a huge value is quoted by a prefix, and values that once passed the checks and failed
inside a trial (lr .inf, seeds -1 and 2**70, a 100000 px image size) are caught before any trial."""
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from helpers import ROOT
from test_safety import SMOKE, problems_of, smoke_raw
from xfer.config import ConfigError
from xfer.load import MAX_YAML_BYTES, load_study, parse_study

BOMB = "\n".join(["name: bomb", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
                 + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
                 + ["trials: {init: [{strategy: random}], models: [cbr_tiny], seeds: *i}"]) + "\n"

UNDER_A_MEMORY_LIMIT = textwrap.dedent("""
    import resource, sys
    from xfer.cli import main  # imports torch first: the limit is on what the check itself allocates
    vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + 512 * 2**20, vm + 512 * 2**20))
    print("exit code:", main(["check", sys.argv[1]]))
""")


def test_billion_laughs_is_refused_by_check_within_half_a_gigabyte(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    assert len(BOMB) < 1200  # 9**9 = 387 million values once expanded
    done = subprocess.run([sys.executable, "-c", UNDER_A_MEMORY_LIMIT, str(bomb)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # before: 3.3 GB after 300 s, no output
    assert "exit code: 2" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]
    [error] = done.stderr.strip().splitlines()
    assert error.startswith("xfer check: ConfigError: ") and "expands to" in error and "more than the 100,000" in error and len(error) < 1000


def test_billion_laughs_is_refused_by_run_and_in_the_same_format_as_check(tmp_path, capsys):
    from xfer.cli import main

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    began = time.process_time()
    assert main(["run", str(bomb)]) == 2 and main(["check", str(bomb)]) == 2
    assert time.process_time() - began < 5
    run, check = capsys.readouterr().err.strip().splitlines()
    assert run.replace("xfer run:", "xfer check:").replace("  (--debug for the traceback)", "") == \
        check.replace("  (--debug for the traceback)", "")


def test_a_huge_yaml_is_refused_unread(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: huge\n" + "# padding\n" * (MAX_YAML_BYTES // 10 + 1))
    began = time.process_time()
    with pytest.raises(ConfigError, match="more than the 1,048,576 a study or recipe may have"):
        load_study(huge)
    assert time.process_time() - began < 1


def test_duplicate_keys_are_an_error_naming_the_key_and_lines(tmp_path):
    text = SMOKE.read_text().replace("lr: 0.003}", "lr: 0.003, lr: 0.5}")
    assert text.count("lr:") == 2
    study = tmp_path / "dup.yaml"
    study.write_text(text + "name: again\n")
    with pytest.raises(ConfigError) as error:
        load_study(study)
    problems = "\n".join(error.value.problems)
    assert "train.lr: duplicate key (lines" in problems and "name: duplicate key (lines 3 and" in problems


def test_a_huge_value_is_quoted_by_a_short_prefix():
    raw = smoke_raw()
    raw["name"] = "x/" * 200_000
    raw["train"]["epochs"] = ["y"] * 100_000
    problems = problems_of(raw)
    assert any(p.startswith("name: 'x/x/") for p in problems) and all(len(p) <= 2000 for p in problems)
    assert any("train.epochs: expected an integer, got ['y'" in p and "characters)" in p for p in problems)


@pytest.mark.parametrize("field, value, expected", [
    ("train.lr", float("inf"), "train.lr: inf is not a finite number"),
    ("train.lr", float("nan"), "train.lr: nan is not a finite number"),
    ("trials.seeds", [-1], "trials.seeds[0]: -1 is out of range; expected a value in [0, 4294967296)"),
    ("trials.seeds", [0, 2**70], "trials.seeds[1]: 1180591620717411303424 is out of range"),
])
def test_values_that_failed_inside_a_trial_are_caught_by_the_checks(field, value, expected):
    raw = smoke_raw()
    block, key = field.split(".")
    raw[block][key] = value
    assert any(p.startswith(expected) for p in problems_of(raw)), problems_of(raw)


def test_yaml_inf_lr_is_caught_from_the_file(tmp_path):
    study = tmp_path / "inf.yaml"
    study.write_text(SMOKE.read_text().replace("lr: 0.003}", "lr: .inf}"))
    with pytest.raises(ConfigError, match="train.lr: inf is not a finite number"):
        load_study(study)


def test_an_image_size_that_cannot_fit_in_memory_is_caught_before_any_trial():
    from xfer.preflight import study_preflight

    raw = smoke_raw()
    raw["data"]["image_size"] = 100000
    [problem] = study_preflight(parse_study(raw, "s.yaml", ROOT / "experiments"), ROOT / "experiments")
    assert problem.startswith("data.image_size: 100000 px needs") and "use at most ~" in problem
