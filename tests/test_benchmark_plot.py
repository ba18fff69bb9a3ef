"""benchmarks/plot.py reads pytest-benchmark's JSON as test_cpu_speed and test_first_call write it."""

from __future__ import annotations

import json

from benchmarks import plot


def _bench(name, minimum, **extra_info):
    return {"name": name, "param": name.split("[")[-1].rstrip("]"), "stats": {"min": minimum}, "extra_info": extra_info}


DATA = {
    "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}},
    "benchmarks": [
        _bench("test_steady_state[a-notebook]", 2.0, case="a", peer="notebook", steps=100, load_before=1.0),
        _bench("test_steady_state[a-fastsup torch]", 0.5, case="a", peer="fastsup torch", steps=100, load_after=3.0),
        _bench("test_first_call[fastsup-10000-warm-cache]", 9.0, call_seconds=4.0),
    ],
}


def test_reads_steps_per_second_first_calls_and_load():
    assert plot.steady_state(DATA) == {"a": {"notebook": 50.0, "fastsup torch": 200.0}}
    assert plot.first_calls(DATA) == {"fastsup-10000-warm-cache": 4.0}
    assert plot.loads(DATA) == (1.0, 3.0)


def test_draws_a_png(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps(DATA))
    plot.main([str(tmp_path / "run.json"), str(tmp_path / "run.png")])
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
