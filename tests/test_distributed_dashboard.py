"""A precompute started from the Admin page: a real local Dask cluster fills the cache while
the page shows cells done, rate, ETA, failed cells and the Dask dashboard link."""
from __future__ import annotations

from tests.test_app import run_page, tiny_env  # noqa: F401  (tiny_env is a fixture)


def test_admin_starts_a_precompute_and_sees_it_finish(tiny_env, tmp_path):  # noqa: F811
    from distributed import LocalCluster

    from ui import precompute

    (tiny_env / "TD_broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    at = run_page("pages/admin.py")
    assert not at.exception
    at.multiselect(key="precompute_methods").set_value(["saliency"])
    # A real scheduler and worker, in this process: no second TensorFlow start (the local
    # cluster of worker processes is what tests/test_distributed.py runs).
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        at.text_input(key="precompute_scheduler").set_value(cluster.scheduler_address)
        at.button(key="precompute_start").click().run()
        run = precompute._current["run"]
        run.wait(240)
        at.run()
    assert not at.exception
    texts = " ".join(str(e.value) for e in at.markdown) + " ".join(str(e.value) for e in at.caption)
    assert "Dask dashboard" in texts and run.dashboard_link and run.dashboard_link in texts
    assert run.progress.done == run.progress.total == 5 and run.progress.failed == 1
    [failures] = [e for e in at.expander if "failed or skipped" in e.label]
    assert "TD_broken.jpg" in failures.dataframe[0].value["cell"].tolist()
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 2 * 4     # 4 readable cells, both classes
    assert at.button(key="precompute_start")                            # the form is back for the next run
