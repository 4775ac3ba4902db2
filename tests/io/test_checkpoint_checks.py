"""Checkpoints are checked before they are used (issue 32, parts 2 and 3): every member of torch's zip
archive against its CRC-32, the checksum of every tensor and field in the checkpoints, resume files
and curve files we write, and any failure to read one is one line."""

from __future__ import annotations

import struct
import zipfile

import pytest
import torch

from landscape.cli import connect as connect_cli
from landscape.cli import prune as prune_cli
from landscape.cli import surf as surf_cli
from landscape.connect.curve import Curve, load_curve
from landscape.errors import LandscapeError
from landscape.io.checkpoint import CHECKSUM, contents_sha256, read_checkpoint, save_checkpoint
from landscape.models import build_model
from landscape.training.run_folder import RunFolder

SURF = ["--arch", "digits_cnn", "--samples", "40", "--x=-1:1:3", "--batch-size", "40", "--no-progress"]


def member_offset(path, suffix: str) -> int:
    """Where the bytes of the zip member whose name ends with ``suffix`` start in the file."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(suffix))
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", f.read(4))
    return info.header_offset + 30 + name_len + extra_len


def flip(path, offset: int) -> None:
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 0x10
    open(path, "wb").write(bytes(data))


def rezip(src, dst, replace: dict[str, bytes]) -> None:
    """Copy a torch zip archive with some members replaced (CRC-32s written anew: an edit, not damage)."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
        for info in z.infolist():
            name = next((k for k in replace if info.filename.endswith(k)), None)
            out.writestr(info, replace[name] if name else z.read(info.filename))


def one_error_line(err: str, prog: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    for w in words:
        assert w in lines[0], err
    return lines[0]


# -- part 2: the archive's CRC-32, for every checkpoint read -------------------------------------


def test_a_flipped_byte_in_a_users_state_dict_is_damaged_not_other_weights(digits_ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(open(digits_ckpt, "rb").read())
    flip(bad, member_offset(bad, "data/0") + 5)  # inside the first tensor: torch.load reads another weight
    assert not torch.equal(torch.load(bad)["features.0.weight"], torch.load(digits_ckpt)["features.0.weight"])
    with pytest.raises(LandscapeError, match=r"is damaged: its member '.*data/0' fails its CRC-32 check"):
        read_checkpoint(bad)
    assert surf_cli.main(["--model", str(bad), *SURF, "--out", str(tmp_path / "s.h5")]) == 2
    one_error_line(capsys.readouterr().err, "landscape-surf", "bad.pt", "is damaged")
    assert not (tmp_path / "s.h5").exists()


def test_a_damaged_header_is_one_line(digits_ckpt, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(open(digits_ckpt, "rb").read())
    with zipfile.ZipFile(bad) as z:
        offset = next(i for i in z.infolist() if i.filename.endswith("data.pkl")).header_offset
    flip(bad, offset)  # the local header's signature
    with pytest.raises(LandscapeError, match="is damaged"):
        read_checkpoint(bad)


# -- part 2: the checksum of every tensor and field of the files we write ---------------------------


def checkpoint_dict() -> dict:
    model = build_model("mlp", num_classes=10, in_channels=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 1, 8, 8)).sum().backward()
    opt.step()
    return {"state_dict": model.state_dict(), "epoch": 9, "optimizer": opt.state_dict(),
            "args": {"lr": 0.1, "epochs": 20, "milestones": [5, 10]}, "threads": 1}


def edited(path, tmp_path, change) -> str:
    """The file re-saved by plain torch with ``change`` applied and its recorded checksum kept:
    an edit with valid CRC-32s, which only the checksum can tell."""
    obj = torch.load(path, weights_only=True)
    change(obj)
    out = tmp_path / "edited.pt"
    torch.save(obj, out)
    return str(out)


@pytest.mark.parametrize("what, change", [
    ("a field", lambda o: o.update(epoch=5)),
    ("an argument", lambda o: o["args"].update(lr=0.2)),
    ("a list", lambda o: o["args"]["milestones"].append(15)),
    ("a weight", lambda o: o["state_dict"]["net.1.weight"].view(-1)[3].add_(1e-3)),
    ("the optimizer's state", lambda o: next(iter(o["optimizer"]["state"].values()))["momentum_buffer"].mul_(2)),
    ("an entry added", lambda o: o.update(extra=1)),
    ("an entry removed", lambda o: o.pop("threads")),
])
def test_every_tensor_and_field_is_checksummed(tmp_path, what, change):
    path = save_checkpoint(tmp_path / "model_9.pt", checkpoint_dict())
    ckpt = read_checkpoint(path)
    assert ckpt.checksummed and CHECKSUM not in ckpt.meta and ckpt.meta["epoch"] == 9
    with pytest.raises(LandscapeError, match="is damaged: its contents do not match the checksum it records"):
        read_checkpoint(edited(path, tmp_path, change))


def test_the_checksum_ignores_only_the_order_of_keys():
    a = checkpoint_dict()
    b = dict(reversed(list(a.items())))
    assert contents_sha256(a) == contents_sha256(b)
    for other in ({**a, "epoch": 9.0}, {**a, "epoch": "9"}, {**a, "args": {**a["args"], "milestones": (5, 10)}},
                  {**a, "state_dict": {k: v.double() for k, v in a["state_dict"].items()}}):
        assert contents_sha256(other) != contents_sha256(a)  # the type of a value counts too


def test_a_checkpoint_written_before_checksums_is_crc_checked_only(tmp_path):
    old = tmp_path / "old.pt"
    torch.save(checkpoint_dict(), old)  # what landscape 0.2 wrote: no checksum entry
    ckpt = read_checkpoint(old)
    assert not ckpt.checksummed and ckpt.meta["epoch"] == 9


# -- resume files --------------------------------------------------------------------------------


def run_folder_with(tmp_path, state: dict, name: str = "model_3.pt", write=save_checkpoint) -> str:
    folder = tmp_path / "run"
    folder.mkdir()
    write(folder / name, {**state, "args": {"epochs": 5}})
    return str(folder)


def test_a_damaged_or_edited_resume_checkpoint_is_refused(tmp_path):
    state = checkpoint_dict()
    folder = run_folder_with(tmp_path, {**state, "epoch": 3})
    assert RunFolder(folder, {"epochs": 5}, resume=True).resume_state["epoch"] == 3
    obj = torch.load(f"{folder}/model_3.pt", weights_only=True)
    obj["epoch"] = 4  # resume from the wrong epoch
    torch.save(obj, f"{folder}/model_3.pt")
    with pytest.raises(LandscapeError, match="model_3.pt' is damaged: its contents do not match"):
        RunFolder(folder, {"epochs": 5}, resume=True)
    torch.save({**obj, "epoch": 3}, f"{folder}/model_3.pt")
    flip(f"{folder}/model_3.pt", member_offset(f"{folder}/model_3.pt", "data/0") + 2)
    with pytest.raises(LandscapeError, match="model_3.pt' is damaged: its member .* fails its CRC-32 check"):
        RunFolder(folder, {"epochs": 5}, resume=True)


def test_a_resume_checkpoint_without_its_optimizer_is_one_line(tmp_path):
    state = {k: v for k, v in checkpoint_dict().items() if k != "optimizer"}
    folder = run_folder_with(tmp_path, {**state, "epoch": 3})
    with pytest.raises(LandscapeError, match="is not a whole landscape-train checkpoint: it has no 'optimizer' entry"):
        RunFolder(folder, {"epochs": 5}, resume=True)


def test_landscape_train_resume_from_a_damaged_checkpoint_is_one_line(tmp_path, capsys):
    from landscape.cli.train import main

    out = tmp_path / "run"
    argv = ["--arch", "mlp", "--dataset", "digits", "--epochs", "2", "--save-every", "1", "--subset", "100",
            "--no-progress", "--threads", "1", "--out", str(out)]
    assert main(argv[:5] + ["1"] + argv[6:]) == 0
    flip(out / "model_1.pt", member_offset(out / "model_1.pt", "data/0") + 1)
    assert main([*argv, "--resume"]) == 2
    one_error_line(capsys.readouterr().err, "landscape-train", "model_1.pt", "is damaged")


# -- curve files ---------------------------------------------------------------------------------


def small_curve() -> Curve:
    torch.manual_seed(0)
    a, b = build_model("mlp", num_classes=10, in_channels=1), build_model("mlp", num_classes=10, in_channels=1)
    return Curve.between(a, b, meta={"arch": "mlp", "num_classes": 10, "in_channels": 1})


def test_a_curve_file_checks_every_entry_params_and_meta_included(tmp_path):
    path = small_curve().save(tmp_path / "c.pt")
    assert load_curve(path).params == small_curve().params
    for change in (lambda o: o["params"].pop(), lambda o: o.update(arch="digits_cnn"),
                   lambda o: o["bend"][next(iter(o["bend"]))].mul_(2)):
        with pytest.raises(LandscapeError, match="is damaged"):
            load_curve(edited(path, tmp_path, change))


def test_a_curve_file_without_any_checksum_is_refused_one_from_before_loads(tmp_path):
    curve = small_curve()
    old = tmp_path / "old.pt"
    torch.save(curve.state(), old)  # landscape 0.2: curve_sha256 over its tensors, no checksum of the rest
    assert load_curve(old).checksum() == curve.checksum()
    bare = tmp_path / "bare.pt"
    torch.save({k: v for k, v in curve.state().items() if k != "curve_sha256"}, bare)
    with pytest.raises(LandscapeError, match="records no checksum"):
        load_curve(bare)


# -- part 3: any failure to read a checkpoint is one line ---------------------------------------


@pytest.fixture
def bad_pickle(digits_ckpt, tmp_path) -> str:
    """A checkpoint whose archive is whole (every CRC-32 right) but whose pickle refers to a memo
    entry it never stored: torch's weights-only unpickler raises ``KeyError: 175``."""
    out = tmp_path / "bad_pickle.pt"
    rezip(digits_ckpt, out, {"data.pkl": b"\x80\x02h\xaf."})
    with pytest.raises(KeyError):
        torch.load(out, weights_only=True)
    return str(out)


@pytest.mark.parametrize("command, argv", [
    ("landscape-surf", lambda bad, out: [surf_cli.main, ["--model", bad, *SURF, "--out", out]]),
    ("landscape-prune", lambda bad, out: [prune_cli.main, ["--model", bad, "--arch", "digits_cnn", "--count"]]),
    ("landscape-connect", lambda bad, out: [connect_cli.main, ["--eval", bad, "--out", out]]),
])
def test_a_damaged_pickle_is_one_line_in_every_command(bad_pickle, tmp_path, capsys, command, argv):
    main, args = argv(bad_pickle, str(tmp_path / "out.h5"))
    assert main(args) == 2
    one_error_line(capsys.readouterr().err, command, "bad_pickle.pt", "KeyError: 175")
