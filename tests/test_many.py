"""Many fits at once: job handling, errors, the CLI, and a local dask.distributed cluster (slow)."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.cli import main
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.errors import BayescaleError
from bayescale.many import Job, _as_job, read_jobs

SMALL = {"draws": 100, "tune": 100, "discrepancy": False, "calibrate": False, "retry": False}


def test_jobs_from_mappings_keep_fit_options():
    job = _as_job({"runs": "a.csv", "law": "kaplan", "seed": 3, "draws": 50, "name": "a"})
    assert job == Job(runs="a.csv", law="kaplan", options={"seed": 3, "draws": 50}, name="a")
    with pytest.raises(BayescaleError, match="needs 'runs'"):
        _as_job({"law": "kaplan"})


# warnings.catch_warnings is process-wide, not thread-safe: with two jobs in threads, one job leaving its block
# can restore the filters while the other's chain stacking is inside its own, and ArviZ's Pareto-k warning,
# which that block ignores, then meets pytest's "error" filter (seen once, in a full run of the fast tests)
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning")
def test_fit_many_with_a_given_executor_matches_single_fits(mock_sampler, demo_runs):
    jobs = [{"runs": demo_runs, "seed": s, **SMALL} for s in (1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        with ThreadPoolExecutor(2) as pool:
            fits = bs.fit_many(jobs, executor=pool)
        single = bs.fit(demo_runs, seed=2, **SMALL)
    assert [f.seed for f in fits] == [1, 2]
    np.testing.assert_array_equal(fits[1].draws("E"), single.draws("E"))


def test_fit_many_gives_seedless_jobs_reproducible_seeds(mock_sampler, demo_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        with ThreadPoolExecutor(1) as pool:
            a = bs.fit_many([{"runs": demo_runs, **SMALL}, {"runs": demo_runs, "seed": 5, **SMALL}], pool, seed=9)
            b = bs.fit_many([{"runs": demo_runs, **SMALL}], pool, seed=9)
    assert a[1].seed == 5 and a[0].seed == b[0].seed


def test_fit_many_names_the_failed_job(demo_runs):
    with (
        ThreadPoolExecutor(1) as pool,
        pytest.raises(BayescaleError, match="1 of 1 fits failed; first: bad: unknown law"),
    ):
        bs.fit_many([Job(runs=demo_runs, law="gpt", name="bad")], executor=pool)


def test_read_jobs_resolves_paths_and_reports_missing_files(tmp_path, demo_runs):
    demo_runs.table[["N", "D", "loss"]].to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "jobs.csv").write_text("runs,law,seed,out\na.csv,kaplan,4,a_kaplan.nc\n")
    (job,) = read_jobs(tmp_path / "jobs.csv")
    assert job.runs == str(tmp_path / "a.csv") and job.law == "kaplan" and job.options == {"seed": 4}
    (tmp_path / "bad.csv").write_text("runs\nmissing.csv\n")
    with pytest.raises(BayescaleError, match=r"row 2: run file .* not found"):
        read_jobs(tmp_path / "bad.csv")


def test_cli_fit_many_bad_input_exits_2(tmp_path, capsys):
    assert main(["fit-many", str(tmp_path / "*.csv"), "--out-dir", str(tmp_path)]) == 2
    assert "no files match" in capsys.readouterr().err
    assert main(["fit-many", "x.csv", "--out-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_fit_many_on_a_local_dask_cluster_returns_the_single_fits(demo_runs, tmp_path):
    """8 jobs on a 2-worker dask.distributed cluster give the posteriors of 8 single fits with the same seeds."""
    distributed = pytest.importorskip("distributed")
    jobs = [{"runs": demo_runs.table[["N", "D", "loss"]], "seed": 100 + i, **SMALL} for i in range(8)]
    # the compiled model on disk before any worker starts, so that every process below loads the same code
    from bayescale import model_cache
    from bayescale.laws import get_law
    from bayescale.model import build_model, resolve_priors

    law = get_law("chinchilla")
    model_cache.compile_model(build_model(law, demo_runs, resolve_priors(law, demo_runs, None, "auto")), "demo")
    with warnings.catch_warnings():
        # dask's cluster start-up and shutdown chatter (ports, closed comms, unclosed sockets) is not about
        # the fits: what distributed's and tornado's modules issue, and ResourceWarning; nothing of bayescale's
        warnings.filterwarnings("ignore", module=r"(distributed|tornado)(\.|$)")
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.simplefilter("ignore", DiagnosticsWarning)  # 100 draws: the claim is equal draws, not convergence
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            fits = bs.fit_many(jobs, executor=client.get_executor())
        # the single fits in processes of their own, as the cluster's are: a process whose PyTensor function was
        # compiled in it (rather than loaded from a disk cache) can draw differently in the last bits
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            singles = [pool.submit(bs.fit, job["runs"], seed=job["seed"], **SMALL).result() for job in jobs]
    for many, single in zip(fits, singles, strict=True):
        for name in ("E", "alpha", "beta", "sigma"):
            np.testing.assert_array_equal(many.draws(name), single.draws(name))


@pytest.mark.slow
def test_cli_fit_many_default_pool(demo_runs, tmp_path, capsys):
    for name in ("a", "b"):
        demo_runs.table[["N", "D", "loss"]].to_csv(tmp_path / f"{name}.csv", index=False)
    out = tmp_path / "fits"
    out.mkdir()
    args = ["fit-many", str(tmp_path / "*.csv"), "--out-dir", str(out), "--draws", "100", "--tune", "100", "--no-retry"]
    assert main([*args, "--no-discrepancy", "--no-calibrate", "--seed", "1", "--format", "csv"]) == 0
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert len(table) == 2 and sorted(p.name for p in out.glob("*.nc")) == ["a.nc", "b.nc"]
    assert bs.load(out / "a.nc").seed != bs.load(out / "b.nc").seed
