"""DDP with two CPU processes: one MLflow run, attack metrics computed once on rank 0."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from lit_mia.run import run_experiment
from tests.conftest import TINY


@pytest.mark.filterwarnings("ignore")
def test_ddp_spawn_two_cpu_processes(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    res = run_experiment(
        "single",
        [
            *TINY,
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.strategy=ddp_spawn",
            "attack.calibrate=false",
            f"tracking.uri={uri}",
        ],
    )
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("lit_mia/single")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_id == res["natural"].run_id
    assert run.data.params["trainer.devices"] == "2"
    for key in ("attack/ib/auc", "attack/ia/acc_best", "target/test_acc"):
        assert len(client.get_metric_history(run.info.run_id, key)) == 1
    # per-epoch metrics came from rank 0 only: one value per epoch
    hist = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted(h.step for h in hist) == [0, 1]
    # the weights trained in the spawned workers came back to the main process: the logged
    # checkpoint differs from the seeded initialisation
    import pytorch_lightning as pl
    import torch

    from lit_mia import config
    from lit_mia.training import build_data, load_state, make_net

    cfg = config.load("single", [*TINY, f"tracking.uri={uri}"])
    pl.seed_everything(cfg.seed, verbose=False)
    init = make_net(cfg, build_data(cfg)[0]).state_dict()
    path = client.download_artifacts(run.info.run_id, "checkpoints/target.pt", str(tmp_path))
    trained = load_state(path)
    assert trained.keys() == init.keys()
    assert any(not torch.equal(trained[k], init[k]) for k in init if k.endswith("weight"))
