"""The librosa outputs stored with the package (bench/metrics/backbones/librosa_tables.npz) equal
what the installed librosa returns, bit for bit, and loading the protocol's backbones no longer
imports librosa.filters (scipy.signal, numba)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from genau_core.networks import stft as _stft


def test_stored_tables_equal_librosa():
    stored = _stft._stored_tables()
    fresh = _stft.compute_librosa_tables()
    assert sorted(stored) == sorted(fresh), "regenerate: python -m genau_core.networks.stft"
    for key, value in fresh.items():
        assert stored[key].dtype == value.dtype and np.array_equal(stored[key], value), key


def test_other_configurations_call_librosa():
    import librosa.filters

    got = _stft.slaney_mel_matrix(22050, 1024, 40, 0.0, 11025.0)
    want = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=40, fmin=0.0, fmax=11025.0).T
    assert np.array_equal(got, want)
    assert np.array_equal(_stft.periodic_hann(256), librosa.filters.get_window("hann", 256, fftbins=True))


def test_protocol_backbones_do_not_import_librosa_filters():
    code = (
        "import sys\n"
        "from bench.metrics.backbones.panns import Cnn14Backbone\n"
        "from bench.metrics.backbones.laion_clap import LaionClapHtsatBase\n"
        "from bench.metrics.backbones.ms_clap import MsClap2023\n"
        "from genau_core.networks.stft import dft_kernels, slaney_mel_matrix\n"
        "Cnn14Backbone().init_random(0)\n"
        "for n in (512, 1024): dft_kernels(n)\n"
        "slaney_mel_matrix(48000, 1024, 64, 50.0, 14000.0); slaney_mel_matrix(44100, 1024, 64, 50.0, 14000.0)\n"
        "print('librosa.filters' in sys.modules, 'scipy.signal' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-2:] == ["False", "False"]
