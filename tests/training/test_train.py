"""landscape-train: learning, the checkpoint format, resume, refusal to overwrite, the CLI."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch
from helpers import make_cifar10, quick

from landscape.cli.train import main
from landscape.errors import LandscapeError
from landscape.io.checkpoint import load_state_dict
from landscape.jobs.train import train
from landscape.training import Milestones, default_milestones


def test_schedule_is_the_originals():
    assert default_milestones(300) == [150, 225, 275]
    lr_at = Milestones(0.1, 0.1, default_milestones(300))
    assert lr_at(150) == 0.1
    assert lr_at(151) == pytest.approx(0.01)
    assert lr_at(276) == pytest.approx(1e-4)


def test_mlp_learns_digits(tmp_path):
    result = train(quick(tmp_path, epochs=6))
    assert result.test_accuracy > 90.0
    assert result.epoch == 6


def test_checkpoint_format_and_log(tmp_path):
    result = train(quick(tmp_path, epochs=3, save_every=2))
    out = tmp_path / "run"
    assert sorted(os.listdir(out)) == ["log.csv", "model_0.pt", "model_2.pt", "model_3.pt"]
    assert [os.path.basename(p) for p in result.checkpoints] == [
        "model_0.pt", "model_2.pt", "model_3.pt"]
    ckpt = torch.load(out / "model_3.pt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 3 and ckpt["arch"] == "mlp" and ckpt["num_classes"] == 10
    assert ckpt["accuracy"] == pytest.approx(result.test_accuracy)
    assert ckpt["args"]["batch_size"] == 64 and ckpt["args"]["milestones"] == [2]
    assert "state" in ckpt["optimizer"] and "param_groups" in ckpt["optimizer"]
    sd = load_state_dict(out / "model_3.pt")
    assert set(sd) == set(result.model.state_dict())
    init = torch.load(out / "model_0.pt", weights_only=True)
    assert init["epoch"] == 0
    assert not torch.equal(init["state_dict"]["net.1.weight"], sd["net.1.weight"])
    with open(out / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert set(rows[0]) == {"epoch", "lr", "train_loss", "train_err", "test_loss", "test_err",
                            "seconds"}
    assert float(rows[3]["test_err"]) == pytest.approx(100 - result.test_accuracy)
    assert float(rows[3]["lr"]) == pytest.approx(0.005)


def _final_weights(out) -> dict[str, torch.Tensor]:
    last = max((int(n[6:-3]), n) for n in os.listdir(out) if n.startswith("model_"))[1]
    return torch.load(os.path.join(out, last), weights_only=True)


class Stop(KeyboardInterrupt):
    pass


@pytest.mark.parametrize("drop_resume_file", [False, True])
def test_resumed_run_equals_uninterrupted_run(tmp_path, drop_resume_file):
    # BatchNorm, momentum, augmentation and a decaying rate all have to survive the restart
    kw = dict(arch="digits_cnn", epochs=5, save_every=2, augment=True, subset=300,
              milestones=[3], lr=0.1)
    full = train(quick(tmp_path, "full", **kw))

    def interrupt(epoch, row):
        if epoch == 3:
            raise Stop

    with pytest.raises(Stop):
        train(quick(tmp_path, "cut", **kw), on_epoch_end=interrupt)
    cut = tmp_path / "cut"
    assert os.path.isfile(cut / "resume.pt")  # epoch 3 is not a save epoch
    if drop_resume_file:  # fall back to model_2.pt
        os.remove(cut / "resume.pt")
    with pytest.raises(LandscapeError, match="unfinished"):
        train(quick(tmp_path, "cut", **kw))
    resumed = train(quick(tmp_path, "cut", resume=True, **kw))
    a, b = _final_weights(tmp_path / "full"), _final_weights(cut)
    assert a["epoch"] == b["epoch"] == 5
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3, 4, 5]
    assert resumed.history[-1]["test_loss"] == pytest.approx(full.history[-1]["test_loss"])
    assert not os.path.exists(cut / "resume.pt")


def test_refuses_to_overwrite_and_checks_resume_settings(tmp_path):
    train(quick(tmp_path, epochs=1))
    with pytest.raises(LandscapeError, match="finished.*`resume`.*`overwrite`"):
        train(quick(tmp_path, epochs=1))
    with pytest.raises(LandscapeError, match="different settings: lr 0.05 -> 0.1"):
        train(quick(tmp_path, epochs=2, lr=0.1, resume=True))
    # a mistake made together with --overwrite leaves the old run alone
    with pytest.raises(LandscapeError, match="unknown architecture"):
        train(quick(tmp_path, epochs=1, overwrite=True, arch="nonet"))
    assert os.path.isfile(tmp_path / "run" / "model_1.pt")
    again = train(quick(tmp_path, epochs=1, overwrite=True, seed=3, milestones=[]))
    assert again.epoch == 1
    # a finished run can be extended when the schedule is given explicitly
    extended = train(quick(tmp_path, epochs=2, seed=3, milestones=[], resume=True))
    assert [r["epoch"] for r in extended.history] == [0, 1, 2]


def test_cifar_folder_training_with_label_noise(tmp_path):
    make_cifar10(tmp_path / "data", n_per_batch=4)
    result = train(quick(tmp_path, arch="resnet20", dataset="cifar10",
                         data_root=str(tmp_path / "data"), epochs=1, batch_size=8,
                         label_noise=0.5, seed=1))
    assert result.epoch == 1
    record = np.load(tmp_path / "run" / "label_noise.npz")
    assert float(record["p"]) == 0.5 and len(record["indices"]) == len(record["noisy"])
    ckpt = torch.load(tmp_path / "run" / "model_1.pt", weights_only=True)
    assert ckpt["args"]["augment"] is True and ckpt["args"]["label_noise"] == 0.5
    assert ckpt["label_noise_file"] == "label_noise.npz"


def test_adam_mse_and_synthetic(tmp_path):
    result = train(quick(tmp_path, arch="lenet", dataset="synthetic", synthetic_size=64,
                         optimizer="adam", lr=1e-3, loss="mse", epochs=1, num_classes=10))
    assert np.isfinite(result.history[-1]["train_loss"])


def test_bad_settings_are_user_errors(tmp_path):
    with pytest.raises(LandscapeError, match="does not take"):
        train(quick(tmp_path, arch="mlp", dataset="synthetic", synthetic_size=8))
    with pytest.raises(LandscapeError, match="`optimizer`"):
        train(quick(tmp_path, optimizer="rmsprop"))
    with pytest.raises(LandscapeError, match="`batch_size`"):
        train(quick(tmp_path, batch_size=0))
    with pytest.raises(LandscapeError, match="no CUDA|not a device"):
        train(quick(tmp_path, device="cuda:7" if not torch.cuda.is_available() else "nodev"))


# --- the command ----------------------------------------------------------------------------


def test_cli_trains_and_refuses_to_overwrite(tmp_path, capsys):
    out = str(tmp_path / "cli")
    argv = ["--arch", "mlp", "--dataset", "digits", "--epochs", "2", "--lr", "0.05",
            "--batch-size", "64", "--save-every", "1", "--out", out, "--no-progress"]
    assert main(argv) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["log.csv", "model_0.pt", "model_1.pt", "model_2.pt"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err and "Traceback" not in err
    assert main(argv + ["--resume"]) == 0  # finished: nothing left to do


@pytest.mark.parametrize(
    "args,message",
    [
        (["--arch", "resnet20", "--dataset", "cifar10"], "needs --data-root"),
        (["--arch", "nonet", "--dataset", "digits"], "unknown architecture"),
        (["--arch", "mlp", "--dataset", "digits", "--lr", "-1"], "--lr must be positive"),
        (["--arch", "mlp", "--dataset", "digits", "--label-noise", "2"], "--label-noise"),
        (["--arch", "mlp", "--dataset", "cifar10", "--data-root", "/no/such/dir"],
         "does not exist"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, capsys, args, message):
    assert main(args + ["--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("landscape-train: error:") and message in err
    assert err.count("\n") == 1


def test_cli_missing_cifar_batch(tmp_path, capsys):
    make_cifar10(tmp_path / "data", skip="data_batch_5")
    code = main(["--arch", "resnet20", "--dataset", "cifar10", "--data-root",
                 str(tmp_path / "data"), "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 2 and "missing data_batch_5" in capsys.readouterr().err


def test_cli_lists_architectures(capsys):
    assert main(["--list-archs"]) == 0
    names = capsys.readouterr().out.split()
    assert "resnet56_noshort" in names and "wrn56_2" in names
