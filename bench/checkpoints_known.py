"""Published sha256 hashes of checkpoint files: the only grounds on which a record says "official".

A record names every checkpoint file it used by file name and sha256. It calls a file
"official" only when its sha256 is listed here, with the place where the hash is published
(a README, a model card, a release page). Any other file is recorded as "checkpoint"
(loaded from a file, not verified): it may well be the released file, but nothing here
shows it.

The list is empty on purpose. Checked (2026-12) for published sha256 hashes: the READMEs and
code of haoheliu/audioldm_eval, haoheliu/AudioLDM, haoheliu/AudioLDM2, LAION-AI/CLAP,
microsoft/CLAP, snap-research/GenAU, declare-lab/tango, hkchengrex/av-benchmark and
Stability-AI/stable-audio-metrics (mirrors under /work/.mirror) publish none for the files
we load: PANNs' Zenodo record gives md5 sums (for Cnn14_mAP=0.431.pth, not the 16 kHz file),
torchvggish's `vggish-10086976.pth` carries only an 8-digit hash prefix in its name, and the
Hugging Face files' LFS hashes could not be read from here. Add an entry only with a full
sha256 copied from the source you name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedHash:
    file: str  # the file name as published
    sha256: str  # 64 lower-case hex digits, as published
    source: str  # URL or document where the hash is published


PUBLISHED_HASHES: tuple[PublishedHash, ...] = ()
