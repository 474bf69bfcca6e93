"""The gear planner: exactly optimal against brute force, covering, aligned, in budget; `ascend-asr plan`."""
import itertools
import os

import numpy as np
import pytest
import yaml

from ascend_asr.errors import OptionError, ProfileError
from ascend_asr.planner import batch_rows, evaluate, pad_to_max, plan_gears, uniform_gears

HELDOUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "ascend_asr", "assets", "speech", "heldout", "manifest.tsv")


def brute_rows(n: int, sizes) -> tuple[int, int]:
    """A scheduler filling one gear: the largest batch the remaining utterances fill, else the smallest."""
    rows = calls = 0
    sizes = sorted(sizes, reverse=True)
    while n > 0:
        size = next((b for b in sizes if b <= n), sizes[-1])
        rows, calls, n = rows + size, calls + 1, n - size
    return rows, calls


def brute_cost(frames, gears, sizes):
    padded = calls = 0
    for g in gears:
        below = max([x for x in gears if x < g], default=0)
        n = sum(1 for f in frames if below < f <= g)
        if n:
            rows, k = brute_rows(n, sizes)
            padded, calls = padded + g * rows, calls + k
    return padded, calls


def brute_force(frames, max_gears, candidates, cover=0):
    """min over every gear subset (of the distinct lengths, the top one raised to `cover`) and every subset of
    the batch sizes, of (padded frames, calls, gears, batch sizes)."""
    values = sorted(set(frames))
    top = max(values[-1], cover)
    best = None
    for k in range(min(max_gears, len(values))):
        for lower in itertools.combinations(values[:-1], k):
            gears = (*lower, top)
            for r in range(1, len(candidates) + 1):
                for sizes in itertools.combinations(candidates, r):
                    rank = (*brute_cost(frames, gears, sizes), len(gears), len(sizes))
                    best = rank if best is None or rank < best else best
    return best


@pytest.mark.parametrize("seed", range(40))
def test_the_plan_is_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    align = int(rng.choice([1, 8, 16]))
    frames = [align * int(v) for v in rng.integers(1, 12, size=int(rng.integers(1, 14)))]
    max_gears = int(rng.integers(2, 6))
    candidates = tuple(sorted(set(int(b) for b in rng.choice([1, 2, 3, 4, 8], size=int(rng.integers(1, 4))))))
    plan = plan_gears(frames, align=align, max_gears=max_gears, batch_sizes=candidates)
    expected = brute_force(frames, max_gears, candidates)
    assert (plan.padded_frames, plan.calls, len(plan.gears), len(plan.batch_sizes)) == expected
    assert brute_cost(frames, plan.gears, plan.batch_sizes) == (plan.padded_frames, plan.calls)
    assert set(plan.batch_sizes) <= set(candidates)
    assert plan.gears[-1] == max(frames) and plan.dropped == 0 and plan.utterances == len(frames)
    assert len(plan.gears) <= max_gears and all(g % align == 0 for g in plan.gears)


def test_unaligned_frames_are_aligned_and_cover_raises_the_top_gear():
    frames = [5, 17, 17, 30, 33]
    plan = plan_gears(frames, align=16, max_gears=3, cover=50)
    assert plan.gears[-1] == 64 and all(g % 16 == 0 for g in plan.gears)
    aligned = [16, 32, 32, 32, 48]
    assert (plan.padded_frames, plan.calls, len(plan.gears), 1) == brute_force(aligned, 3, (1,), cover=64)


def test_degenerate_cases():
    one = plan_gears([480], align=16, max_gears=4, batch_sizes=(1, 8))
    assert one.gears == (480,) and one.batch_sizes == (1,) and one.efficiency == 1.0
    equal = plan_gears([320] * 20, align=16, max_gears=8, batch_sizes=(1, 4, 8))
    assert equal.gears == (320,) and equal.batch_sizes == (4, 8) and equal.padded_frames == 320 * 20
    assert equal.calls == 3
    frames = [16, 32, 48, 48, 96]
    roomy = plan_gears(frames, align=16, max_gears=100)
    assert roomy.gears == (16, 32, 48, 96) and roomy.padded_frames == sum(frames) and roomy.efficiency == 1.0


def test_batch_padding_can_make_fewer_gears_better():
    # 8 utterances at batch 8: one gear of 101 costs 8 * 101; two gears would pad two batches of 8
    plan = plan_gears([100] * 4 + [101] * 4, align=1, max_gears=4, batch_sizes=(8,))
    assert plan.gears == (101,) and plan.padded_frames == 808


@pytest.mark.parametrize("max_gears", [0, 1, 101, 2.5, True])
def test_the_budget_is_checked(max_gears):
    with pytest.raises(ProfileError, match="from 2 to 100"):
        plan_gears([16, 32], align=16, max_gears=max_gears)


def test_no_frames_is_an_error():
    with pytest.raises(ProfileError, match="no utterances"):
        plan_gears([], align=16)


def test_datasets_too_large_for_int64_keys_are_planned_exactly():
    frames = [10 ** 17, 3 * 10 ** 17, 3 * 10 ** 17, 7 * 10 ** 17]  # keys past 2 ** 60: Python integers
    plan = plan_gears(frames, max_gears=2, batch_sizes=(1, 2))
    assert (plan.padded_frames, plan.calls, len(plan.gears), len(plan.batch_sizes)) == brute_force(frames, 2, (1, 2))


def test_batch_rows_follows_the_scheduler():
    for n in range(0, 40):
        for sizes in [(1,), (8,), (1, 4, 8), (3, 8), (4, 8), (2, 5)]:
            assert batch_rows(n, sizes) == (brute_rows(n, sizes) if n else (0, 0))


def test_batch_rows_matches_infers_length_sorted_batches():
    from ascend_asr import batching

    if not hasattr(batching, "plan_batches"):
        pytest.skip("batching.plan_batches not present")
    rng = np.random.default_rng(0)
    gears = (64, 128, 256)
    rows = [{"stem": f"{i:012d}", "frames": int(f), "padded_frames": int(16 * -(-f // 16))}
            for i, f in enumerate(rng.integers(1, 256, size=37))]
    for sizes in [(1,), (8,), (1, 4, 8), (3, 8)]:
        batches = batching.plan_batches(rows, gears, sizes)
        fed = sum(frames * size for frames, size, _ in batches)
        cost = evaluate([r["padded_frames"] for r in rows], gears, sizes)
        assert (fed, len(batches)) == (cost.padded_frames, cost.calls)


def test_evaluate_counts_dropped_and_pad_to_max():
    frames = [16, 32, 64, 2000]
    current = evaluate(frames, (32, 64), (1,), valid=[10, 30, 60, 1990])
    assert current.dropped == 1 and current.utterances == 3 and current.padded_frames == 32 + 32 + 64
    assert current.efficiency == pytest.approx(100 / 128)
    base = pad_to_max(frames, 4000)
    assert base.padded_frames == 4 * 4000 and base.calls == 4
    assert uniform_gears(4000, 5, 16) == (800, 1600, 2400, 3200, 4000)


def test_librispeech_like_mix_beats_pad_to_4000():
    """The issue's duration mix: 16 planned gears at batch 8 give >= 4x pad-to-4000 and efficiency >= 0.9."""
    from ascend_asr.frontends import build_frontend
    from ascend_asr.profiles import load_profile

    rng = np.random.default_rng(183)
    durations = np.minimum(rng.lognormal(np.log(6.0), 0.75, 300), 35.0)
    frontend = build_frontend(load_profile("jasper_small").frontend)
    samples = [int(round(d * 16000)) for d in durations]
    frames = [frontend.aligned_frames(s) for s in samples]
    valid = [frontend.valid_frames(s) for s in samples]
    plan = plan_gears(frames, align=16, max_gears=16, batch_sizes=(8,), valid=valid)
    assert plan.speedup_over(pad_to_max(frames, 4000, valid)) >= 4.0 and plan.efficiency >= 0.9
    assert plan.speedup_over(evaluate(frames, uniform_gears(4000, 5, 16), (8,), valid)) > 1.3


# -- the command ---------------------------------------------------------------------------------------------

def test_plan_command_writes_a_profile_that_loads_and_converts(tmp_path, capsys, small_onnx):
    from ascend_asr.bundle import convert
    from ascend_asr.frontends import build_frontend
    from ascend_asr.plan_cli import main, manifest_frames
    from ascend_asr.profiles import load_profile

    out = str(tmp_path / "planned.yaml")
    assert main(["--manifest", HELDOUT, "--profile", "jasper_small", "--max-gears", "4", "--batch-sizes", "1,4",
                 "--output", out]) == 0
    printed = capsys.readouterr().out
    assert "predicted padding efficiency" in printed and "x pad-to-max" in printed
    profile = load_profile(out)
    base = load_profile("jasper_small")
    assert profile.name == base.name and profile.vocabulary == base.vocabulary and profile.frontend == base.frontend
    assert 1 <= len(profile.frames) <= 4 and all(f % 16 == 0 for f in profile.frames)
    data = manifest_frames(build_frontend(base.frontend), HELDOUT)
    assert len(data.frames) == 9 and not data.skipped
    assert max(profile.frames) >= max(data.frames) and set(profile.batch_sizes) <= {1, 4}
    bundles = convert(out, small_onnx, str(tmp_path / "bundles"), build_om=False)
    assert [b.batch_size for b in bundles] == list(profile.batch_sizes)
    assert tuple(bundles[0].frames) == profile.frames


def test_plan_command_counts_bad_entries_and_reads_headers(tmp_path, capsys):
    from ascend_asr.plan_cli import main

    base = os.path.dirname(HELDOUT)
    with open(HELDOUT, encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    cols = header.split("\t")
    no_duration = [r.split("\t") for r in rows if r.strip()]
    for cells in no_duration:
        cells[cols.index("duration")] = ""
        cells[cols.index("path")] = os.path.join(base, cells[cols.index("path")])
    lines = [header, *("\t".join(c) for c in no_duration), f"{tmp_path}/missing.wav\t\tgone\tx\tx",
             f"{base}/fsdd_0_theo_33.wav\tlong\tbad\tx\tx"]
    manifest = tmp_path / "m.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    assert main(["--manifest", str(manifest), "--profile", "jasper_small"]) == 0
    captured = capsys.readouterr()
    assert "plan for 9 utterances" in captured.out and "(2 skipped)" in captured.out
    assert "missing.wav" in captured.err


def test_plan_from_prep_matches_the_manifest_plan(demo_prep, capsys):
    from ascend_asr.frontends import build_frontend
    from ascend_asr.plan_cli import prep_frames
    from ascend_asr.prep import read_meta
    from ascend_asr.profiles import load_profile

    frontend = build_frontend(load_profile("jasper_small").frontend)
    data = prep_frames(frontend, demo_prep)
    rows = read_meta(demo_prep)
    assert len(data.frames) == len(rows) and not data.skipped
    for row, needed, valid in zip(rows, data.frames, data.valid):
        assert valid == row["frames"] and needed % 16 == 0 and row["frames"] <= needed <= row["padded_frames"]


def test_plan_from_prep_refuses_another_frontend(demo_prep):
    from ascend_asr.frontends import build_frontend
    from ascend_asr.plan_cli import prep_frames
    from ascend_asr.profiles import load_profile

    with pytest.raises(ProfileError, match="another frontend"):
        prep_frames(build_frontend(load_profile("deepspeech2_small").frontend), demo_prep)


def test_profile_command_plans_gears_from_a_manifest(tmp_path, capsys):
    from ascend_asr.profile_cli import main
    from ascend_asr.profiles import load_profile

    config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "upstream", "nvidia_jasper",
                          "jasper_small_nvidia.yaml")
    out = str(tmp_path / "auto.yaml")
    assert main(["--family", "jasper", "--config", config, "--gears", "auto", "--manifest", HELDOUT,
                 "--max-gears", "3", "--output", out]) == 0
    profile = load_profile(out)
    align = int(profile.frontend.get("pad_align", 1))
    assert 1 <= len(profile.frames) <= 3 and all(f % align == 0 for f in profile.frames)
    assert "planned" in capsys.readouterr().out
    with pytest.raises(OptionError, match="--manifest"):
        main(["--family", "jasper", "--config", config, "--gears", "auto", "--output", out])
    with pytest.raises(OptionError, match="only with --gears auto"):
        main(["--family", "jasper", "--config", config, "--manifest", HELDOUT, "--output", out])
    with pytest.raises(ProfileError, match="from 2 to 100"):
        main(["--family", "jasper", "--config", config, "--gears", "auto", "--manifest", HELDOUT,
              "--max-gears", "101", "--output", out])


def test_plan_cli_rejects_a_bad_budget(capsys):
    from ascend_asr.plan_cli import main

    with pytest.raises(SystemExit):
        main(["--manifest", HELDOUT, "--profile", "jasper_small", "--max-gears", "200"])
    assert "from 2 to 100" in capsys.readouterr().err


def test_written_profile_keeps_its_other_keys(tmp_path):
    from ascend_asr.plan_cli import planned_profile
    from ascend_asr.planner import PlanCost
    from ascend_asr.profiles import find_profile

    plan = PlanCost((32, 64), (1, 8), 0, 0, 0, 0, 0, ())
    d = planned_profile(find_profile("lstm_ctc_char"), plan)
    with open(find_profile("lstm_ctc_char"), encoding="utf-8") as f:
        original = yaml.safe_load(f)
    assert d["frames"] == [32, 64] and d["batch_sizes"] == [1, 8]
    def rest(x):
        return {k: v for k, v in x.items() if k not in ("frames", "batch_sizes")}

    assert rest(d) == rest(original) and d["frontend"]["cmvn_stats"].startswith("package:")


def test_written_profile_resolves_a_relative_cmvn_path(tmp_path):
    from ascend_asr.plan_cli import planned_profile
    from ascend_asr.planner import PlanCost

    (tmp_path / "p").mkdir()
    source = tmp_path / "p" / "my.yaml"
    source.write_text(yaml.safe_dump({"name": "my", "frontend": {"name": "x", "cmvn_stats": "stats/cmvn.txt"}}))
    d = planned_profile(str(source), PlanCost((32,), (1,), 0, 0, 0, 0, 0, ()))
    assert d["frontend"]["cmvn_stats"] == str(tmp_path / "p" / "stats" / "cmvn.txt")


def test_a_cover_beyond_the_longest_utterance_gets_its_own_gear_when_that_is_cheaper():
    """The top gear must hold `cover`; merging the longest utterances into it cost 138 frames where a gear of
    its own for `cover` (holding nobody) costs 76."""
    plan = plan_gears([25, 13, 23], max_gears=4, batch_sizes=[2], cover=56)
    assert plan.gears == (13, 25, 56) and plan.padded_frames == 76
    tight = plan_gears([25, 13, 23], max_gears=2, batch_sizes=[2], cover=56)
    assert tight.gears[-1] == 56 and len(tight.gears) == 2
