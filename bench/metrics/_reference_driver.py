"""Score staged clips with the field's reference tools; write their numbers as JSON.

Stand-alone: run by the interpreter of the environment that holds the reference packages
(`bench score --impl reference --reference-python PATH` starts it). It imports only the
standard library, numpy, torch and the reference packages - never `bench`, which may not be
installed in that environment.

    python _reference_driver.py --gen DIR --ref DIR --captions captions.json \
        --cnn14 Cnn14_16k_mAP=0.438.pth --vggish vggish-10086976.pth \
        --laion-clap music_speech_audioset_epoch_15_esc_89.98.pt --ms-clap CLAP_weights_2023.pth \
        --groups audioldm_eval,laion_clap,msclap --out result.json

Clips are `<clip_id>.wav` in DIR; captions map clip id -> prompt. Metric groups:

  audioldm_eval  `EvaluationHelper(16000, device, backbone="cnn14").main(gen, ref)`: FD, IS, KL
                 (softmax, sigmoid), KID from its Cnn14 16 kHz; FAD from its VGGish. The backbone
                 is named because the helper's default became MERT in 2024-09 (GitHub main); a
                 version whose helper cannot be pinned to Cnn14 (no `backbone` argument, "cnn14"
                 refused, or another network built) is refused: the driver stops, and its JSON
                 carries `refused` (one line). LSD / PSNR / SSIM are switched off (not in the
                 protocol; LSD's ssr_eval dependency rarely builds).
  laion_clap     `CLAP_Module(enable_fusion=False, amodel="HTSAT-base", tmodel="roberta")`,
                 `load_ckpt`, `librosa.load(f, sr=48000)`, `get_audio_embedding_from_data`,
                 `get_text_embedding` -> CLAP_LAION = mean cosine.
  msclap         `CLAPWrapper(model_fp, version="2023")`, `get_audio_embeddings(files,
                 resample=True)`, `get_text_embeddings` -> CLAP_MS = mean cosine, with its
                 random crop replaced by the first window (the protocol's deterministic crop).

A group whose package cannot be imported, or that raises, gives NaN metrics with the reason;
the other groups still run. Each group records its tool's version and network (`backbones`).

Testing hook: if $GENAU_BENCH_REFERENCE_SHIMS names a Python file, it is imported before
anything else (offline stand-ins: benchmarks/parity/reference_shims.py). Not for real runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import json
import math
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

SHIMS_ENV = "GENAU_BENCH_REFERENCE_SHIMS"
GROUP_METRICS: dict[str, tuple[str, ...]] = {
    "audioldm_eval": ("FD", "IS", "KL_softmax", "KL_sigmoid", "FAD", "KID"),
    "laion_clap": ("CLAP_LAION",),
    "msclap": ("CLAP_MS",),
}
CNN14_16K_FILENAME = "Cnn14_16k_mAP=0.438.pth"
CNN14_32K_FILENAME = "Cnn14_mAP=0.431.pth"
VGGISH_RELEASE_FILENAME = "vggish-10086976.pth"
MSCLAP_CROP_NOTE = (
    "msclap's random crop of clips longer than its 7 s window replaced by the first 7 s (the "
    "protocol's deterministic crop)"
)
CNN14_BACKBONE = "cnn14"  # audioldm_eval's name for its PANNs Cnn14 feature extractor


class ToolRefused(Exception):
    """The installed tool cannot compute the protocol's numbers (e.g. audioldm_eval not pinnable to Cnn14)."""


class GroupResult:
    """Values (NaN where missing), reasons and notes of one metric group."""

    def __init__(self, metrics: tuple[str, ...]):
        self.values: dict[str, float] = {m: math.nan for m in metrics}
        self.reasons: dict[str, str] = {}
        self.notes: list[str] = []
        self.n: dict[str, int] = {}
        self.backbone: dict[str, str] = {}  # the tool's version and the network it ran

    def fail(self, reason: str) -> None:
        for m in self.values:
            self.values[m] = math.nan
            self.reasons[m] = reason


# ----------------------------------------------------------------------------- helpers
def load_shims() -> str | None:
    """Import the file named by $GENAU_BENCH_REFERENCE_SHIMS (testing hook), if any."""
    path = os.environ.get(SHIMS_ENV)
    if not path:
        return None
    spec = importlib.util.spec_from_file_location("genau_bench_reference_shims", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{SHIMS_ENV}={path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return str(Path(path).resolve())


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        module = sys.modules.get(name)
        return getattr(module, "__version__", None) if module is not None else None


def missing_package_reason(package: str) -> str | None:
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed for {sys.executable}"
    return None


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def wav_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".wav")


def mean_cosine(audio, text) -> tuple[float, int]:
    """Mean cosine of matching rows, in the dtype the tool returned (float32), as users compute it."""
    import numpy as np

    audio, text = np.asarray(audio), np.asarray(text)
    cos = (audio * text).sum(1) / (np.linalg.norm(audio, axis=1) * np.linalg.norm(text, axis=1))
    return float(cos.mean()), len(cos)


def captions_for(files: list[Path], captions: dict[str, str]) -> tuple[list[Path], list[str]]:
    """The generated files that have a caption, and their captions, in file order."""
    kept = [f for f in files if f.stem in captions]
    return kept, [captions[f.stem] for f in kept]


# ----------------------------------------------------------------------------- audioldm_eval
def patch_audioldm_eval_librosa() -> None:
    """librosa >= 0.10 made pad_center's size and filters.mel's arguments keyword-only;
    audioldm_eval's TacotronSTFT calls them positionally when it is built. Keyword shims."""
    import audioldm_eval.audio.stft as stft
    import librosa.filters
    import librosa.util

    stft.pad_center = lambda data, size, **k: librosa.util.pad_center(data, size=size, **k)
    stft.librosa_mel_fn = lambda sr, n_fft, n_mels, fmin, fmax, **k: librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, **k
    )


def read_vggish_weights_from(checkpoint: Path, folder: Path) -> None:
    """torchvggish fetches its weights with torch.hub.load_state_dict_from_url(<release url>);
    the release file is served from `folder` (a link to the user's file) through torch's own
    cache lookup, so nothing is downloaded. Other URLs (the PCA file) go the usual way."""
    import torch.hub

    link = folder / VGGISH_RELEASE_FILENAME
    link.symlink_to(checkpoint.resolve())
    fetch = torch.hub.load_state_dict_from_url

    def load_state_dict_from_url(url, model_dir=None, *args, **kwargs):
        if url.rsplit("/", 1)[-1] == VGGISH_RELEASE_FILENAME:
            model_dir = str(folder)
        return fetch(url, model_dir, *args, **kwargs)

    torch.hub.load_state_dict_from_url = load_state_dict_from_url


def prepare_audioldm_eval_cwd(work: Path, cnn14: Path) -> None:
    """EvaluationHelper loads ./ckpt/Cnn14_16k_mAP=0.438.pth and wgets both PANNs files unless
    ./ckpt/Cnn14_mAP=0.431.pth exists; it never loads that 32 kHz one at 16 kHz: empty placeholder."""
    (work / "ckpt").mkdir()
    (work / "ckpt" / CNN14_16K_FILENAME).symlink_to(cnn14.resolve())
    (work / "ckpt" / CNN14_32K_FILENAME).touch()


def audioldm_eval_values(res: dict, out: GroupResult) -> None:
    names = {
        "FD": "frechet_distance",
        "IS": "inception_score_mean",
        "KL_softmax": "kullback_leibler_divergence_softmax",
        "KL_sigmoid": "kullback_leibler_divergence_sigmoid",
        "FAD": "frechet_audio_distance",
        "KID": "kernel_inception_distance_mean",
    }
    for metric, key in names.items():
        out.values[metric] = float(res.get(key, math.nan))
    if out.values["KL_softmax"] == -1 and out.values["KL_sigmoid"] == -1:
        for m in ("KL_softmax", "KL_sigmoid"):
            out.values[m] = math.nan
            out.reasons[m] = (
                "audioldm_eval returned -1: it computes KL only when over 99% of the file names of both folders match"
            )
    if out.values["FAD"] == -1:
        out.values["FAD"] = math.nan
        out.reasons["FAD"] = (
            "audioldm_eval's FrechetAudioDistance returned -1 (its value on any exception; see its log above)"
        )
    out.reasons.setdefault("IS", f"std over 10 splits = {float(res.get('inception_score_std', math.nan)):.4f}")
    out.reasons.setdefault(
        "KID", f"std over 100 subsets = {float(res.get('kernel_inception_distance_std', math.nan)):.4g}"
    )


def refuse_unpinnable(why: str) -> ToolRefused:
    where = importlib.util.find_spec("audioldm_eval")
    origin = Path(where.origin).parent if where is not None and where.origin else "?"
    return ToolRefused(
        f"audioldm_eval {package_version('audioldm_eval') or '(unknown version)'} at {origin} cannot be pinned to its "
        "Cnn14 "
        f"backbone: {why}; install one whose EvaluationHelper takes backbone='cnn14' (PyPI audioldm-eval==0.0.3, or "
        "github.com/haoheliu/audioldm_eval)"
    )


def cnn14_arguments(helper_cls) -> tuple[dict, str]:
    """The keyword that pins EvaluationHelper to Cnn14, and its default (audioldm_eval <= 2024-06: backbone="cnn14",
    ignored, Cnn14 always; since 2024-09: backbone="mert"). Refused when the helper takes no `backbone`."""
    try:
        params = inspect.signature(helper_cls.__init__).parameters
    except (TypeError, ValueError) as e:
        raise refuse_unpinnable(f"its EvaluationHelper signature cannot be read ({e})") from None
    if "backbone" not in params:
        raise refuse_unpinnable(
            f"its EvaluationHelper{inspect.signature(helper_cls.__init__)} takes no backbone argument"
        )
    default = params["backbone"].default
    return {"backbone": CNN14_BACKBONE}, ("none" if default is inspect.Parameter.empty else repr(default))


def check_cnn14(helper) -> str:
    """The class path of the network the helper built; refused unless it is audioldm_eval's PANNs Cnn14."""
    model = getattr(helper, "mel_model", None)
    cls = type(model)
    path = f"{cls.__module__}.{cls.__qualname__}"
    chosen = getattr(helper, "backbone", CNN14_BACKBONE)
    if (
        model is None
        or cls.__name__ != "Cnn14"
        or not cls.__module__.startswith("audioldm_eval.")
        or chosen != CNN14_BACKBONE
    ):
        raise refuse_unpinnable(
            f"asked for backbone='cnn14', it built {path if model is not None else 'no mel_model'} "
            f"(backbone={chosen!r})"
        )
    return path


@contextlib.contextmanager
def cnn14_checkpoint_home(work: Path, cnn14: Path) -> Iterator[None]:
    """audioldm_eval since 2023-10 loads ~/.cache/audioldm_eval/ckpt/<file> (and wgets both PANNs files unless
    Cnn14_mAP=0.431.pth exists there): HOME points at a folder holding the user's file while the helper is built.
    torch.hub keeps the user's own cache folder (the torchvggish code)."""
    import torch.hub

    home = work / "home"
    ckpt = home / ".cache" / "audioldm_eval" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / CNN14_16K_FILENAME).symlink_to(cnn14.resolve())
    (ckpt / CNN14_32K_FILENAME).touch()
    hub_dir = torch.hub.get_dir()
    old = os.environ.get("HOME")
    torch.hub.set_dir(hub_dir)
    os.environ["HOME"] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old


def run_audioldm_eval(a: argparse.Namespace, out: GroupResult) -> None:
    import audioldm_eval
    import torch

    pin, default = cnn14_arguments(audioldm_eval.EvaluationHelper)  # before anything is built or read
    patch_audioldm_eval_librosa()
    with tempfile.TemporaryDirectory(prefix="audioldm_eval_cwd_") as tmp:
        work = Path(tmp)
        prepare_audioldm_eval_cwd(work, Path(a.cnn14))
        (work / "hub").mkdir()
        read_vggish_weights_from(Path(a.vggish), work / "hub")
        with working_directory(work):
            with cnn14_checkpoint_home(work, Path(a.cnn14)):
                try:
                    helper = audioldm_eval.EvaluationHelper(16000, torch.device(a.device), **pin)
                except ValueError as e:  # e.g. "Backbone not supported"
                    raise refuse_unpinnable(f"EvaluationHelper(backbone='cnn14') raised ValueError: {e}") from None
            network = check_cnn14(helper)
            out.backbone = {
                "version": package_version("audioldm_eval") or "unknown",
                "backbone": CNN14_BACKBONE,
                "argument": f"backbone='cnn14' (its default: {default})",
                "network": network,
            }
            helper.calculate_lsd = lambda *x, **k: {}  # not in the protocol's metric set
            helper.calculate_psnr_ssim = lambda *x, **k: {}
            with torch.no_grad():
                res = helper.main(str(Path(a.gen).resolve()), str(Path(a.ref).resolve()))
    audioldm_eval_values(res, out)
    out.n = {"generated": len(wav_files(Path(a.gen))), "reference": len(wav_files(Path(a.ref)))}


# ----------------------------------------------------------------------------- laion_clap
def run_laion_clap(a: argparse.Namespace, out: GroupResult) -> None:
    import laion_clap
    import librosa
    import numpy as np
    import torch

    files, texts = captions_for(wav_files(Path(a.gen)), a.caption_map)
    if not files:
        raise ValueError("no generated clip has a caption")
    model = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-base", tmodel="roberta", device=a.device)
    out.backbone = {
        "version": package_version("laion_clap") or "unknown",
        "backbone": "HTSAT-base + roberta",
        "argument": "CLAP_Module(enable_fusion=False, amodel='HTSAT-base', tmodel='roberta')",
    }
    model.load_ckpt(a.laion_clap, verbose=False)
    waves = [librosa.load(str(f), sr=48000)[0] for f in files]
    with torch.no_grad():
        audio = np.concatenate(
            [
                model.get_audio_embedding_from_data(waves[i : i + a.batch], use_tensor=False)
                for i in range(0, len(waves), a.batch)
            ]
        )
        text = model.get_text_embedding(texts, use_tensor=False)
    out.values["CLAP_LAION"], out.n["pairs"] = mean_cosine(audio, text)


# ----------------------------------------------------------------------------- msclap
def use_first_window(wrapper_module) -> None:
    """msclap crops clips longer than its window at random.randrange(...): always 0 here."""

    class FirstWindow:
        @staticmethod
        def randrange(*args, **kwargs) -> int:
            return 0

    wrapper_module.random = FirstWindow


def run_msclap(a: argparse.Namespace, out: GroupResult) -> None:
    import msclap  # noqa: F401  (registers msclap.CLAPWrapper)
    import torch

    wrapper_module = sys.modules["msclap.CLAPWrapper"]
    use_first_window(wrapper_module)
    out.notes.append(MSCLAP_CROP_NOTE)
    files, texts = captions_for(wav_files(Path(a.gen)), a.caption_map)
    if not files:
        raise ValueError("no generated clip has a caption")
    wrapper = wrapper_module.CLAPWrapper(model_fp=a.ms_clap, version="2023", use_cuda=a.device.startswith("cuda"))
    out.backbone = {
        "version": package_version("msclap") or "unknown",
        "backbone": "2023 (HTSAT + GPT-2)",
        "argument": "CLAPWrapper(version='2023')",
    }
    with torch.no_grad():
        audio = wrapper.get_audio_embeddings([str(f) for f in files], resample=True).cpu().numpy()
        text = wrapper.get_text_embeddings(texts).cpu().numpy()
    out.values["CLAP_MS"], out.n["pairs"] = mean_cosine(audio, text)


GROUP_RUNNERS: dict[str, Callable[[argparse.Namespace, GroupResult], None]] = {
    "audioldm_eval": run_audioldm_eval,
    "laion_clap": run_laion_clap,
    "msclap": run_msclap,
}
GROUP_CHECKPOINTS = {"audioldm_eval": ("cnn14", "vggish"), "laion_clap": ("laion_clap",), "msclap": ("ms_clap",)}


# ----------------------------------------------------------------------------- record
def audioldm_eval_fad_reader() -> str:
    """How the installed audioldm_eval's FrechetAudioDistance reads files, from its source (not imported):
    PyPI 0.0.3 `load_audio_task` (sf.read int16, channel mean, resampy); GitHub main / GenAU's copy: WaveDataset."""
    spec = importlib.util.find_spec("audioldm_eval")
    fad = Path(spec.origin).parent / "metrics" / "fad.py" if spec is not None and spec.origin else None
    if fad is None or not fad.is_file():
        return "unknown (audioldm_eval/metrics/fad.py not found)"
    text = fad.read_text(encoding="utf-8", errors="replace")
    if "load_audio_task" in text and "resampy" in text:
        return (
            "resampy.resample (kaiser_best) to 16 kHz of the file read as int16, channels averaged "
            "(its load_audio_task)"
        )
    if "WaveDataset" in text:
        return "as audioldm_eval-cnn14 (its FAD reads files through the same WaveDataset)"
    return "unknown (audioldm_eval/metrics/fad.py reads files another way)"


def resamplers() -> dict[str, str]:
    """How each tool resamples its input, as installed here."""
    librosa_res_type = "unknown (librosa not importable)"
    if importlib.util.find_spec("librosa") is not None:
        try:
            import librosa

            librosa_res_type = str(inspect.signature(librosa.load).parameters["res_type"].default)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            librosa_res_type = f"unknown ({e})"
    torchaudio = f"torchaudio {package_version('torchaudio') or 'unknown version'}"
    return {
        "audioldm_eval-cnn14": f"{torchaudio} functional.resample (windowed sinc) to 16 kHz of the first channel, "
        "after subtracting its mean; clips shorter than 2 s zero-padded",
        "audioldm_eval-vggish": audioldm_eval_fad_reader(),
        "laion_clap": f"librosa.load(sr=48000), res_type={librosa_res_type} (channels averaged)",
        "msclap": f"{torchaudio} transforms.Resample (windowed sinc) to 44.1 kHz, "
        "then channels concatenated (reshape(-1))",
    }


def run_group(group: str, a: argparse.Namespace) -> tuple[GroupResult, float]:
    """Run one group; a ToolRefused propagates (the driver stops), any other failure is the group's reason."""
    out = GroupResult(GROUP_METRICS[group])
    t0 = time.perf_counter()
    missing = missing_package_reason(group)
    if missing:
        out.fail(missing)
        return out, time.perf_counter() - t0
    absent = [c for c in GROUP_CHECKPOINTS[group] if not getattr(a, c)]
    if absent:
        out.fail(f"no checkpoint given for {', '.join(absent)}")
        return out, time.perf_counter() - t0
    try:
        GROUP_RUNNERS[group](a, out)
    except ToolRefused:
        raise
    except Exception as e:  # noqa: BLE001 - any failure of a tool is that group's reason
        out.fail(f"{group} failed: {type(e).__name__}: {e}")
    return out, time.perf_counter() - t0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", required=True, help="folder of generated clips <clip_id>.wav")
    ap.add_argument("--ref", required=True, help="folder of reference clips <clip_id>.wav")
    ap.add_argument("--captions", required=True, help="JSON {clip_id: prompt}")
    ap.add_argument("--cnn14", help="Cnn14_16k_mAP=0.438.pth (audioldm_eval)")
    ap.add_argument("--vggish", help="vggish-10086976.pth (audioldm_eval's VGGish FAD)")
    ap.add_argument("--laion-clap", help="music_speech_audioset_epoch_15_esc_89.98.pt")
    ap.add_argument("--ms-clap", help="CLAP_weights_2023.pth")
    ap.add_argument("--groups", default=",".join(GROUP_METRICS), help="comma-separated subset of %(default)s")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16, help="clips per laion_clap forward")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    a.group_list = [g.strip() for g in a.groups.split(",") if g.strip()]
    unknown = [g for g in a.group_list if g not in GROUP_METRICS]
    if unknown:
        ap.error(f"unknown group(s) {unknown}; known: {list(GROUP_METRICS)}")
    a.caption_map = json.loads(Path(a.captions).read_text(encoding="utf-8"))
    return a


def main(argv: list[str] | None = None) -> int:
    shims = load_shims()
    a = parse_args(argv)
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}
    seconds: dict[str, float] = {}
    notes: dict[str, list[str]] = {}
    counts: dict[str, dict[str, int]] = {}
    backbones: dict[str, dict[str, str]] = {}
    refused = None
    for group in a.group_list:
        try:
            res, dt = run_group(group, a)
        except ToolRefused as e:
            refused = {"group": group, "reason": str(e)}
            print(f"[reference] {group}: refused: {e}", file=sys.stderr, flush=True)
            break  # the record would not be the protocol's: nothing more is run
        values.update(res.values)
        reasons.update(res.reasons)
        seconds[group], notes[group], counts[group] = dt, res.notes, res.n
        if res.backbone:
            backbones[group] = res.backbone
        print(f"[reference] {group}: {dt:.1f} s", file=sys.stderr, flush=True)
    packages = ("audioldm_eval", "laion_clap", "msclap", "torch", "torchaudio", "librosa", "resampy", "numpy")
    result = {
        "python": sys.executable,
        "python_version": sys.version.split()[0],
        "shims": shims,
        "groups": a.group_list,
        "values": values,
        "reasons": reasons,
        "versions": {p: package_version(p) for p in packages},
        "backbones": backbones,
        "refused": refused,
        "resamplers": resamplers(),
        "seconds": seconds,
        "notes": notes,
        "n": counts,
    }
    Path(a.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
