"""Decoding segments from audio files (soundfile) and video containers (PyAV)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("av", reason="PyAV is not installed (pip install 'genau-bench[recap]')")

from bench.audio import AudioError  # noqa: E402
from genau_core.recap.decode import decode_spans, ms_to_index, probe_duration_ms  # noqa: E402
from tests.genau_core.recap.test_recap_pipeline import write_av  # noqa: E402

SR = 16000
SPANS = [(1000, 3000), (45000, 47500), (88000, 90000)]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    x = (0.2 * np.random.default_rng(0).standard_normal(SR * 90)).astype(np.float32)
    sf.write(d / "a.wav", x, SR, subtype="FLOAT")
    sf.write(d / "a.flac", x, SR)  # 16-bit
    stereo = np.stack([x, -0.5 * x], axis=1)
    sf.write(d / "stereo.wav", stereo, SR, subtype="FLOAT")
    write_av(d / "a.mkv", x, SR, "flac")
    write_av(d / "a.mp4", x, SR, "aac", video=True)
    return d, x


def test_audio_files_exact(media):
    d, x = media
    waves, sr = decode_spans(d / "a.wav", SPANS)
    assert sr == SR
    for w, (s, e) in zip(waves, SPANS):
        np.testing.assert_array_equal(w, x[ms_to_index(s, SR) : ms_to_index(e, SR)])
    waves, _ = decode_spans(d / "a.flac", SPANS)
    for w, (s, e) in zip(waves, SPANS):
        np.testing.assert_allclose(w, x[s * 16 : e * 16], atol=1 / 32768 + 1e-7)
    waves, _ = decode_spans(d / "stereo.wav", SPANS[:1])
    np.testing.assert_allclose(waves[0], 0.25 * x[16000:48000], atol=1e-7)  # channels averaged


def test_matroska_flac_exact_with_and_without_seeking(media):
    d, x = media
    linear, sr = decode_spans(d / "a.mkv", SPANS, seek_threshold_s=float("inf"))
    sought, _ = decode_spans(d / "a.mkv", SPANS, seek_threshold_s=5.0)
    assert sr == SR
    for a, b, (s, e) in zip(linear, sought, SPANS):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, x[s * 16 : e * 16], atol=1 / 32768 + 1e-7)


def test_mp4_aac_aligned_and_seek_invariant(media):
    d, x = media
    linear, sr = decode_spans(d / "a.mp4", SPANS, seek_threshold_s=float("inf"))
    sought, _ = decode_spans(d / "a.mp4", SPANS, seek_threshold_s=5.0)
    for a, b, (s, e) in zip(linear, sought, SPANS):
        assert len(a) == len(b) == (e - s) * 16
        np.testing.assert_allclose(a, b, atol=1e-6)
        # lossy, but on the right samples: the cross-correlation peaks at lag 0
        ref = np.pad(x, 40)[s * 16 : e * 16 + 80]
        lags = [float(np.dot(a, ref[k : k + len(a)])) for k in range(81)]
        assert int(np.argmax(lags)) == 40


def test_probe_and_past_the_end(media):
    d, _ = media
    for name in ("a.wav", "a.flac", "a.mkv", "a.mp4"):
        assert probe_duration_ms(d / name) == 90000, name
    waves, _ = decode_spans(d / "a.mkv", [(89000, 95000), (96000, 97000)])
    assert len(waves[0]) == SR and len(waves[1]) == 0


def test_bad_media(media, tmp_path):
    d, _ = media
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a movie")
    with pytest.raises(AudioError) as e:
        decode_spans(bad, SPANS)
    assert e.value.path == str(bad)
    with pytest.raises(AudioError, match="cannot open media"):
        probe_duration_ms(bad)
    with pytest.raises(AudioError, match="media file not found"):
        decode_spans(tmp_path / "none.wav", SPANS)
    import av

    silent_video = tmp_path / "video_only.mp4"
    out = av.open(str(silent_video), "w")
    v = out.add_stream("mpeg4", rate=2)
    v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
    for k in range(4):
        fr = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        fr.pts = k
        for p in v.encode(fr):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    out.close()
    with pytest.raises(AudioError, match="no audio stream"):
        probe_duration_ms(silent_video)
    with pytest.raises(ValueError, match="sorted and non-overlapping"):
        decode_spans(d / "a.wav", [(2000, 3000), (1000, 2500)])


@pytest.mark.parametrize("codec", ["flac", "pcm_s16le", "aac"])
def test_stereo_containers_mixed_down(tmp_path, codec):
    """Packed (s16) and planar (fltp) decoder outputs both average the channels."""
    import av

    x = (0.2 * np.random.default_rng(1).standard_normal((2, SR * 5))).astype(np.float32)
    path = tmp_path / f"stereo_{codec}.mkv"
    out = av.open(str(path), "w")
    s = out.add_stream(codec, rate=SR)
    s.layout = "stereo"
    for i in range(0, x.shape[1], 1024):
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + 1024]), format="fltp", layout="stereo")
        f.sample_rate, f.pts = SR, i
        for p in s.encode(f):
            out.mux(p)
    for p in s.encode(None):
        out.mux(p)
    out.close()
    (w,), sr = decode_spans(path, [(1000, 3000)])
    ref = x.mean(axis=0)[SR : 3 * SR]
    assert sr == SR and len(w) == len(ref)
    if codec == "aac":
        assert np.corrcoef(w, ref)[0, 1] > 0.95
    else:
        np.testing.assert_allclose(w, ref, atol=2 / 32768)
