from topfive.report.progress import StageProgress, duration


def test_each_line_says_stage_progress_and_time_left():
    now = [100.0]
    lines = []
    progress = StageProgress("bench", 4, clock=lambda: now[0], write=lines.append)
    now[0] = 130.0
    progress("[1/4] alexnet on torch: 12 ms at batch 1")
    now[0] = 160.0
    progress("[2/4] resnet50 on onnxruntime: 48 ms at batch 1")
    now[0] = 250.0
    progress("[3/4] lite0")
    progress("[4/4] lite1")
    assert lines[0] == ("topfive report: bench 1/4, 30 s, about 1 min 30 s left in bench: "
                        "[1/4] alexnet on torch: 12 ms at batch 1")
    assert "bench 2/4, 1 min 00 s, about 1 min 00 s left in bench" in lines[1]
    assert "bench 3/4, 2 min 30 s, about 50 s left" in lines[2]
    assert lines[3].startswith("topfive report: bench 4/4, 2 min 30 s, stage done: [4/4] lite1")


def test_duration():
    assert duration(59.4) == "59 s" and duration(61) == "1 min 01 s" and duration(-3) == "0 s"


def test_the_time_left_in_the_study_adds_the_later_stages():
    now = [0.0]
    lines = []
    progress = StageProgress("evaluate", 2, clock=lambda: now[0], write=lines.append, later=120.0)
    now[0] = 10.0
    progress("lite0")
    now[0] = 20.0
    progress("lite1")
    assert "about 10 s left in evaluate, about 2 min 10 s in the study: lite0" in lines[0]
    assert "stage done, about 2 min 00 s in the study: lite1" in lines[1]
    assert progress.seconds_per_run == 10.0


def test_expected_seconds_prefer_this_machines_figures():
    from topfive.report.progress import TYPICAL_SECONDS_PER_RUN, expected_seconds

    assert expected_seconds({"bench": 3}) == 3 * TYPICAL_SECONDS_PER_RUN["bench"]
    assert expected_seconds({"bench": 3, "evaluate": 0}, {"bench": 2.0}) == 6.0
