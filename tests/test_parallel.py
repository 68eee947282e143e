"""The parallel map's handling of a Ray task's failure, without Ray (`parallel.task_error`)."""

from azscale import parallel
from azscale.errors import ThinData, UserError


class FakeRayTaskError(Exception):
    """What Ray raises on the driver when a task fails: the task's exception as `cause`."""

    def __init__(self, cause):
        super().__init__(f"task failed: {cause!r}")
        self.cause = cause


def test_a_remote_refusal_keeps_its_kind():
    err = parallel.task_error(FakeRayTaskError(ThinData("no state seen twice")), "zipf")
    assert type(err) is ThinData and str(err) == "no state seen twice"  # a sweep records it as skipped
    err = parallel.task_error(FakeRayTaskError(UserError("bad file")), "zipf")
    assert type(err) is UserError and str(err) == "bad file"


def test_a_refusal_with_another_constructor_is_still_one_line():
    class Odd(UserError):
        def __init__(self, a, b):
            super().__init__(f"{a} and {b}")

    err = parallel.task_error(FakeRayTaskError(Odd("x", "y")), "zipf")
    assert isinstance(err, UserError) and str(err) == "x and y"


def test_os_errors_and_programming_errors():
    err = parallel.task_error(FakeRayTaskError(FileNotFoundError(2, "No such file", "/s/x")), "replay")
    assert type(err) is UserError and str(err) == "replay: /s/x: No such file"
    assert parallel.task_error(FakeRayTaskError(KeyError("k")), "replay") is None
