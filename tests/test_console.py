"""What the console shows: xfer's own warnings on one line, once per process."""
import warnings

from xfer import console
from xfer.data.dedup import OverlapWarning


def test_xfer_warnings_print_once_on_one_line_and_others_are_left_alone(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        console.one_line_warnings()
        for _ in range(3):
            warnings.warn("removed 76 of 243 corpus images; listed in x.csv", OverlapWarning)
        with warnings.catch_warnings(record=True) as others:  # pytest's own hook stands in for the original one
            console.one_line_warnings()
            warnings.warn("a library's own warning", UserWarning)
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["[xfer] warning: removed 76 of 243 corpus images; listed in x.csv"]
    assert [str(w.message) for w in others] == ["a library's own warning"]


def test_help_and_the_console_import_no_torch_ray_mlflow_or_matplotlib():
    import subprocess
    import sys

    code = ("import sys, contextlib, io\nfrom xfer.cli import main\nimport xfer.console\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ray', 'mlflow', 'matplotlib', 'sklearn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_long_trial_prints_an_epoch_line_every_30_s_with_its_eta_and_its_finished_line_names_the_run(capsys):
    from types import SimpleNamespace

    from xfer.progress import TrialProgress

    progress = TrialProgress(total=2, key_of=lambda config: config["key"], epochs=10)
    trial = SimpleNamespace(trial_id="t1", config={"key": "imagenet|resnet18|n=20|seed=0"}, last_result={})
    for epoch, seconds in ((1, 12.0), (2, 24.0), (3, 36.0), (4, 48.0), (5, 60.0), (6, 72.0)):
        progress.on_trial_result(0, [], trial, {"epoch": epoch, "time_total_s": seconds, "val_auc": 0.5 + epoch / 100})
    trial.last_result = {"trial_done": 1, "run_id": "0123abcd", "tuning_score": 0.61, "test_auc": 0.58,
                         "time_total_s": 120.0}
    progress.on_trial_result(0, [], trial, trial.last_result)
    progress.on_trial_complete(0, [], trial)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["[xfer]   trial imagenet|resnet18|n=20|seed=0  epoch 3/10  val AUC 0.530  36s  ETA 1m24s",
                         "[xfer]   trial imagenet|resnet18|n=20|seed=0  epoch 6/10  val AUC 0.560  1m12s  ETA 48s"]
    assert len(lines) == 3 and lines[2].startswith("[xfer] trial 1/2 imagenet|resnet18|n=20|seed=0  best val AUC 0.610")
    assert "run 0123abcd" in lines[2]


def test_the_closing_lines_say_a_failed_report_failed_and_how_to_build_it_again():
    from xfer.console import closing_lines

    lines = closing_lines([], None, "outputs/s", "ValueError: bad merge")
    assert "report: FAILED (ValueError: bad merge); build it again with: xfer report outputs/s" in lines
    assert "report: not built (--no-report)" in closing_lines([], None, "outputs/s")
    assert "browse runs: xfer ui outputs/s" in lines
