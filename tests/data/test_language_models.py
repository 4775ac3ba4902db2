"""Language models: a small randomly initialised GPT-2 (built by transformers from a config, no
download) through landscape-surf and landscape.surface; its loss at the origin is the model's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import landscape
from landscape.directions.options import Directions
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.io.surface_file import read_surface

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install -e '.[hf]')")
pytest.importorskip("safetensors", reason="safetensors is not installed (pip install -e '.[hf]')")

SEQ, VOCAB = 16, 97


def gpt2(folder=None):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=32, n_layer=2, n_head=2,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config).eval()
    if folder is not None:
        model.save_pretrained(folder)  # config.json + model.safetensors (the tied head saved once)
    return model


def tokens(n=24 * SEQ + 5, seed=1):
    return np.random.default_rng(seed).integers(0, VOCAB, size=n).astype(np.int64)


def own_loss(model, ids: torch.Tensor, batch: int) -> tuple[float, float]:
    """The model's own mean loss over the sequences (weighted by sequences per batch) and next-token accuracy."""
    total, correct, n = 0.0, 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(ids), batch):
            x = ids[lo:lo + batch]
            out = model(input_ids=x, labels=x)
            total += float(out.loss) * len(x)
            correct += float((out.logits[:, :-1].argmax(-1) == x[:, 1:]).double().mean()) * len(x)
            n += len(x)
    return total / n, 100 * correct / n


def test_landscape_surf_on_a_hugging_face_folder_and_token_file(tmp_path):
    from landscape.cli.surf import main

    model = gpt2(tmp_path / "gpt")
    ids = tokens()
    np.save(tmp_path / "ids.npy", ids)
    out = tmp_path / "lm.h5"
    rc = main(["--arch", f"hf:{tmp_path / 'gpt'}", "--dataset", f"tokens:{tmp_path / 'ids.npy'}", "--seq-len",
               str(SEQ), "--x=-1:1:3", "--y=-1:1:3", "--batch-size", "8", "--out", str(out), "--device", "cpu",
               "--no-progress"])
    assert rc == 0
    surf = read_surface(str(out))
    seqs = torch.from_numpy(ids[:len(ids) // SEQ * SEQ]).view(-1, SEQ)
    loss, acc = own_loss(model, seqs, 8)
    assert surf.values["train_loss"][1, 1] == pytest.approx(loss, rel=1e-5)
    assert surf.values["train_acc"][1, 1] == pytest.approx(acc, rel=1e-5)
    assert np.isfinite(surf.values["train_loss"]).all() and surf.values["train_loss"].max() > loss

    # the same from a .bin of uint16 ids and an explicit .safetensors --model
    ids.astype(np.uint16).tofile(tmp_path / "ids.bin")
    rc = main(["--arch", f"hf:{tmp_path / 'gpt'}", "--model", str(tmp_path / "gpt" / "model.safetensors"),
               "--dataset", f"tokens:{tmp_path / 'ids.bin'}", "--seq-len", str(SEQ), "--x=-1:1:3",
               "--batch-size", "8", "--out", str(tmp_path / "lm1.h5"), "--device", "cpu", "--no-progress"])
    assert rc == 0
    assert read_surface(str(tmp_path / "lm1.h5")).values["train_loss"][1] == pytest.approx(loss, rel=1e-5)


def test_python_api_with_dict_batches_uses_the_models_own_loss():
    model = gpt2()
    seqs = torch.from_numpy(tokens()[:20 * SEQ]).view(-1, SEQ)
    batches = [{"input_ids": seqs[lo:lo + 5], "labels": seqs[lo:lo + 5]} for lo in range(0, 20, 5)]
    surf = landscape.surface(model, batches, landscape.Grid((-1, 1, 3)), evaluation=EvalOptions(device="cpu"),
                             output=Output(progress=False))
    loss, acc = own_loss(model, seqs, 5)
    assert surf.values["train_loss"][1] == pytest.approx(loss, rel=1e-5)
    assert surf.values["train_acc"][1] == pytest.approx(acc, rel=1e-5)
    # without labels: next-token cross-entropy of the logits, the same number
    plain = [{"input_ids": b["input_ids"]} for b in batches]
    again = landscape.surface(model, plain, landscape.Grid((-1, 1, 3)), evaluation=EvalOptions(device="cpu"),
                              output=Output(progress=False))
    assert again.values["train_loss"][1] == pytest.approx(loss, rel=1e-5)


def test_biasbn_leaves_out_norms_and_one_dimensional_tensors():
    model = gpt2()
    origin = {k: v.detach() for k, v in model.named_parameters()}
    (d,) = landscape.random_directions(origin, 1, ignore="biasbn")
    for name, t in d.items():
        if "ln_" in name or t.dim() == 1:
            assert not t.any(), name
        else:
            assert t.abs().sum() > 0, name
    assert any("wte" in k for k in d)


def test_token_file_mistakes_are_one_line(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((3, 4)))
    with pytest.raises(LandscapeError, match="1-D integer"):
        landscape.load_dataset(f"tokens:{tmp_path / 'f.npy'}", seq_len=4)
    with pytest.raises(LandscapeError, match="--seq-len"):
        landscape.load_dataset(f"tokens:{tmp_path / 'f.npy'}")
    with pytest.raises(LandscapeError, match="config.json"):
        landscape.build_model(f"hf:{tmp_path}")
    _ = Directions  # the API the docs show


@pytest.fixture
def lm_inputs(tmp_path):
    """A GPT-2 folder of vocabulary 97, token files good and bad, a digits_cnn checkpoint."""
    from helpers import save_digits_cnn

    gpt2(tmp_path / "gpt")
    good = tokens()
    np.save(tmp_path / "ok.npy", good)
    big = good.copy()
    big[7] = 150  # beyond the vocabulary
    np.save(tmp_path / "big.npy", big)
    neg = good.copy()
    neg[5] = -3
    np.save(tmp_path / "neg.npy", neg)
    save_digits_cnn(tmp_path / "cnn.pt")
    return tmp_path


@pytest.fixture
def transformers_warnings():
    """What transformers logs from now on (as a fresh process would: its warn-once memory cleared)."""
    import logging

    from transformers.utils import logging as tf_logging

    tf_logging.warning_once.cache_clear()
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    keep, logger = Keep(), logging.getLogger("transformers")
    logger.addHandler(keep)
    yield seen
    logger.removeHandler(keep)


@pytest.mark.parametrize("args, says", [
    (["--arch", "hf:{d}/gpt", "--dataset", "tokens:{d}/big.npy"],
     "--dataset tokens:{d}/big.npy holds token ids up to 150, but --arch hf:{d}/gpt has a vocabulary of 97"),
    (["--arch", "hf:{d}/gpt", "--dataset", "tokens:{d}/neg.npy"], "'{d}/neg.npy' holds negative token ids (-3 at"),
    (["--arch", "hf:{d}/nope", "--dataset", "tokens:{d}/ok.npy"], "hf:{d}/nope: no such folder"),
    (["--arch", "hf:", "--dataset", "tokens:{d}/ok.npy"], "hf: names no folder"),
    (["--arch", "hf:{d}/gpt/config.json", "--dataset", "tokens:{d}/ok.npy"],
     "hf:{d}/gpt/config.json is a file: give the folder of the model (hf:{d}/gpt)"),
    (["--arch", "digits_cnn", "--model", "{d}/cnn.pt", "--dataset", "tokens:{d}/ok.npy"],
     "--dataset tokens:{d}/ok.npy is a token file (sequences of token ids, for a language model); digits_cnn is an "
     "image network"),
])
def test_language_model_mistakes_name_the_input_in_one_line(lm_inputs, capfd, transformers_warnings, args, says):
    """Each mistake says what is wrong with which input, once: no transformers warning before it, not
    "the model does not accept the inputs of shape (16,)", not "no weights; give --model", not the
    checkpoint's shapes."""
    from landscape.cli.surf import main

    d = str(lm_inputs)
    argv = [a.format(d=d) for a in args] + ["--seq-len", str(SEQ), "--x=-1:1:3", "--out", f"{d}/o.h5",
                                           "--no-progress", "--device", "cpu"]
    assert main(argv) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("landscape-surf: error: ") and says.format(d=d) in err[0], err[0]
    assert not transformers_warnings  # our line alone: transformers' bos/eos_token_id warnings held back


def test_a_hugging_face_folder_builds_without_transformers_warnings(lm_inputs, transformers_warnings):
    from transformers.utils import logging as tf_logging

    model = landscape.build_model(f"hf:{lm_inputs / 'gpt'}")
    seqs = torch.from_numpy(tokens()[:4 * SEQ]).view(-1, SEQ)
    with torch.no_grad():
        model(input_ids=seqs, labels=seqs)  # the loss: transformers' "loss_type=None" note held back too
    assert not transformers_warnings
    assert tf_logging.get_verbosity() == tf_logging.WARNING  # the user's own setting is left as it was


def test_the_python_api_refuses_ids_beyond_the_vocabulary():
    model = gpt2()
    seqs = torch.from_numpy(tokens()[:4 * SEQ]).view(-1, SEQ).clone()
    seqs[1, 3] = VOCAB + 5
    with pytest.raises(LandscapeError, match=f"token ids up to {VOCAB + 5}, but the model has a vocabulary of {VOCAB}"):
        landscape.surface(model, [{"input_ids": seqs, "labels": seqs}], landscape.Grid((-1, 1, 3)),
                          evaluation=EvalOptions(device="cpu"), output=Output(progress=False))
