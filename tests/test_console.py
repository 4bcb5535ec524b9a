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
