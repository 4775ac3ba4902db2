"""landscape-train's new minima (SAM, ASAM, distillation, a low-rank start) as a command: what the
checkpoints record, resume bit for bit, bad input in one line; and run folders written by the
previous version (flat ``args`` without the new options), which resume or are refused in one line."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import save_checkpoint_of, save_lowrank

from landscape.cli.train import main
from landscape.errors import LandscapeError
from landscape.io.checkpoint import CHECKSUM, read_checkpoint
from landscape.jobs.train import TrainConfig, train
from landscape.training import SAM

BASE = dict(arch="digits_cnn", dataset="digits", epochs=3, lr=0.05, batch_size=64, save_every=3, subset=200,
            milestones=[2], progress=False, threads=1)


class Stop(Exception):
    pass


def stop_at(epoch_to_stop: int):
    def stop(epoch, row):
        if epoch == epoch_to_stop:
            raise Stop

    return stop


def test_sam_asam_distillation_and_a_low_rank_start_resume_bit_for_bit(tmp_path):
    kw = dict(BASE, sam=0.5, sam_adaptive=True, teacher=save_checkpoint_of(tmp_path / "teacher.pt", seed=3),
              kd_temperature=2.0, kd_alpha=0.5, init_from=save_lowrank(tmp_path / "lowrank.pt"))
    full = train(TrainConfig.from_args(**kw, out=str(tmp_path / "full")))
    with pytest.raises(Stop):
        train(TrainConfig.from_args(**kw, out=str(tmp_path / "cut")), on_epoch_end=stop_at(2))
    assert os.path.isfile(tmp_path / "cut" / "resume.pt")
    with pytest.raises(LandscapeError, match="different settings: sam 0.5 -> 0.05"):
        train(TrainConfig.from_args(**{**kw, "sam": 0.05}, out=str(tmp_path / "cut"), resume=True))
    with pytest.raises(LandscapeError, match="kd_alpha 0.5 -> 0.9"):
        train(TrainConfig.from_args(**{**kw, "kd_alpha": 0.9}, out=str(tmp_path / "cut"), resume=True))
    other = save_checkpoint_of(tmp_path / "other_teacher.pt", seed=4)
    with pytest.raises(LandscapeError, match="teacher_sha256"):
        train(TrainConfig.from_args(**{**kw, "teacher": other}, out=str(tmp_path / "cut"), resume=True))
    train(TrainConfig.from_args(**kw, out=str(tmp_path / "cut"), resume=True))
    a = torch.load(tmp_path / "full" / "model_3.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "model_3.pt", weights_only=True)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert a["step"] == b["step"] and a["optimizer"]["state"][0]["momentum_buffer"].equal(
        b["optimizer"]["state"][0]["momentum_buffer"])
    # what the checkpoints record: the options, the teacher's identity, the ranks; a readable summary
    args = a["args"]
    assert (args["sam"], args["sam_adaptive"], args["kd_temperature"], args["kd_alpha"]) == (0.5, True, 2.0, 0.5)
    assert args["teacher_sha256"] == read_checkpoint(kw["teacher"]).sha256
    assert a["lowrank"]["ranks"] == torch.load(kw["init_from"], weights_only=True)["lowrank"]["ranks"]
    summary = read_checkpoint(tmp_path / "full" / "model_3.pt").summary()
    assert summary["sam"] == "ASAM rho=0.5" and summary["distilled"] == "distilled (T=2, alpha=0.5)"
    assert summary["lowrank"] == "low-rank 0.5, retrained"
    assert full.history[-1]["epoch"] == 3


def test_the_job_builds_sam_around_the_optimizer_and_the_distillation_objective(tmp_path):
    from landscape.jobs.train import TrainJob

    job = TrainJob(TrainConfig.from_args(**BASE, sam=0.05, teacher=save_checkpoint_of(tmp_path / "t.pt"),
                                         out=str(tmp_path / "run")))
    try:
        assert isinstance(job.loop.optimizer, SAM) and job.loop.optimizer.rho == 0.05
        assert job.loop.objective is not job.loop.loss_fn  # trained on distillation, scored on cross-entropy
    finally:
        job.folder.close()


# --- bad input: one line, exit 2, nothing written ----------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--sam", "0"], "--sam must be a positive radius rho, got 0.0"),
    (["--sam", "-0.05"], "--sam must be a positive radius rho"),
    (["--sam-adaptive"], "--sam-adaptive (ASAM) needs --sam"),
    (["--sam", "0.05", "--quant", "bc"], "--sam cannot be combined with --quant"),
    (["--teacher", "{t}/five.pt"], "the teacher '{t}/five.pt' has 5 classes, the data 10"),
    (["--teacher", "{t}/pickled.pt"], "holds pickled Python objects"),
    (["--teacher", "{t}/missing.pt"], "does not exist"),
    (["--teacher", "{t}/ten.pt", "--kd-alpha", "1.5"], "--kd-alpha must be in [0, 1]"),
    (["--teacher", "{t}/ten.pt", "--kd-temperature", "0"], "--kd-temperature must be a positive number"),
    (["--kd-temperature", "2"], "--kd-temperature needs --teacher"),
    (["--teacher", "{t}/ten.pt", "--loss", "mse"], "--loss must be crossentropy"),
])
def test_bad_new_options_are_one_line_exit_2(tmp_path, capsys, args, message):
    from landscape.models import build_model

    save_checkpoint_of(tmp_path / "ten.pt")
    save_checkpoint_of(tmp_path / "five.pt", num_classes=5)
    torch.save(build_model("digits_cnn", num_classes=10, in_channels=1), tmp_path / "pickled.pt")
    argv = [a.format(t=tmp_path) for a in args]
    out = tmp_path / "run"
    assert main(["--arch", "digits_cnn", "--dataset", "digits", "--epochs", "1", "--no-progress", "--out", str(out),
                 *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("landscape-train: error:") and message.format(t=tmp_path) in err, err
    assert err.count("\n") == 1
    assert not out.exists() or not os.listdir(out)


# --- run folders of the previous version ----------------------------------------------------------

# What the previous version (main before this change) wrote as a checkpoint's "args" for BASE, read
# from a checkpoint it wrote, and the top-level keys of its checkpoints (no checksum entry yet).
PREVIOUS_ARGS = {
    "arch": "digits_cnn", "dataset": "digits", "data_root": None, "out": None, "optimizer": "sgd", "lr": 0.05,
    "momentum": 0.9, "nesterov": True, "weight_decay": 0.0005, "batch_size": 64, "epochs": 3, "lr_decay": 0.1,
    "milestones": [2], "loss": "crossentropy", "seed": 0, "device": "auto", "threads": 1, "ngpu": None,
    "channels_last": False, "amp": False, "augment": False, "raw_data": False, "label_noise": 0.0, "subset": 200,
    "num_classes": None, "init": "auto", "init_from": None, "plan": None, "unsafe_pickle": False,
    "synthetic_size": 2048, "save_every": 3, "eval_batch_size": 1024, "resume": False, "overwrite": False,
    "progress": False, "quant": None, "bits": 1, "big_batch": 1, "quant_scale": "he", "quant_keep": "none",
    "quant_step": "unit", "init_from_sha256": "",
}
PREVIOUS_KEYS = {"acc", "accuracy", "arch", "args", "dataset", "epoch", "hook_config", "hooks", "in_channels",
                 "num_classes", "optimizer", "state_dict", "step", "test_err", "test_loss", "threads", "train_err",
                 "train_loss"}


@pytest.fixture
def previous_run(tmp_path) -> str:
    """A run folder as the previous version left it when interrupted after epoch 2: its checkpoints'
    ``args`` are the previous version's flat ones (the training state itself is computed the same
    way by both versions: the test below holds the resumed run to an uninterrupted one)."""
    out = tmp_path / "previous"
    with pytest.raises(Stop):
        train(TrainConfig.from_args(**BASE, out=str(out)), on_epoch_end=stop_at(2))
    for name in ("model_0.pt", "resume.pt"):
        ckpt = torch.load(out / name, weights_only=True)
        ckpt.pop(CHECKSUM)  # the previous version wrote none
        assert set(ckpt) == PREVIOUS_KEYS, set(ckpt) ^ PREVIOUS_KEYS
        ckpt["args"] = {**PREVIOUS_ARGS, "out": str(out)}
        torch.save(ckpt, out / name)
    return str(out)


def test_a_run_folder_of_the_previous_version_resumes_bit_for_bit(tmp_path, previous_run):
    with pytest.raises(LandscapeError, match="different settings: sam None -> 0.05"):
        train(TrainConfig.from_args(**BASE, sam=0.05, out=previous_run, resume=True))
    resumed = train(TrainConfig.from_args(**BASE, out=previous_run, resume=True))
    train(TrainConfig.from_args(**BASE, out=str(tmp_path / "full")))
    a = torch.load(tmp_path / "full" / "model_3.pt", weights_only=True)
    b = torch.load(os.path.join(previous_run, "model_3.pt"), weights_only=True)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3]
    assert b["args"]["sam"] is None and b["args"]["sample_seed"] == 0  # written by this version from now on


@pytest.mark.parametrize("args, message", [
    ({"mixup": 0.2}, r"settings this version of landscape-train does not know \(mixup\)"),
    ("sgd lr=0.05", "record no settings"),
    ({"quant": "bc", "quant_scale": "huge"}, "a quantization this version refuses"),
])
def test_a_run_folder_this_version_cannot_read_is_refused_in_one_line(previous_run, capsys, args, message):
    for name in ("model_0.pt", "resume.pt"):
        path = os.path.join(previous_run, name)
        ckpt = torch.load(path, weights_only=True)
        ckpt["args"] = {**ckpt["args"], **args} if isinstance(args, dict) else args
        torch.save(ckpt, path)  # as the previous version wrote it: no checksum
    with pytest.raises(LandscapeError, match=f"cannot resume .*{message}") as info:
        train(TrainConfig.from_args(**BASE, out=previous_run, resume=True))
    assert "\n" not in str(info.value)
    argv = ["--arch", "digits_cnn", "--dataset", "digits", "--out", previous_run, "--resume", "--no-progress"]
    assert main(argv) == 2 and capsys.readouterr().err.count("\n") == 1
