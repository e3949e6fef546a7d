import numpy as np, pytest, torch
import torch.nn.functional as F
from torch import nn
from brain2image.core import DataFormatError
from brain2image.judge import JudgeFeatures, JudgeLogits
from brain2image.fidelity import (inception_score, fid, kid, kway_accuracy, inception_weights_path, inception_extractor,
                                  random_inception_weights, INCEPTION_FILE)

pytestmark = pytest.mark.usefixtures('one_thread')

class PixelOracle(nn.Module):
    "A perfect classifier: 50 * one-hot of the class written in pixel (0, 0, 0)."
    def __init__(self, K): super().__init__(); self.K = K; self.num_features = K
    def forward(self, x): return 50.0 * F.one_hot(((x[:, 0, 0, 0] + 1) * 10).round().long().clamp(0, self.K - 1), self.K).float()

def _coded(labels):
    x = torch.zeros(len(labels), 3, 8, 8); x[:, 0, 0, 0] = torch.as_tensor(labels).float() / 10 - 1
    return x

# --- IS / FID / KID known answers -------------------------------------------------------------------------------
def test_inception_score_known_answers():
    K = 5
    assert inception_score(_coded(torch.arange(K).repeat(8)), judge=PixelOracle(K)) == pytest.approx((K, 0.0), abs=1e-3)
    assert inception_score(_coded(torch.zeros(20)), judge=PixelOracle(K))[0] == pytest.approx(1.0, abs=1e-6)
    m, s = inception_score(_coded(torch.arange(K).repeat(8)), judge=PixelOracle(K), splits=2)
    assert 1 < m <= K + 1e-3 and s >= 0                                  # random halves: at most K
    with pytest.raises(ValueError, match='at least 3 image'): inception_score(_coded([0, 1]), judge=PixelOracle(K), splits=3)

def test_fid_kid_identical_sets(judge, stim, tiny):
    assert fid(stim, stim, judge=judge) == pytest.approx(0, abs=1e-3)
    a, b = stim[tiny.image_labels == 0], stim[tiny.image_labels == 3]
    d = fid(a, b, judge=judge)
    assert d > 1.0
    k_same, k_diff = kid(stim, stim, judge=judge)[0], kid(a, b, judge=judge)[0]
    assert abs(k_same) < 0.1 * k_diff                                   # unbiased: ~0 (slightly negative) on the same set
    assert fid(stim, stim, judge=JudgeFeatures(judge)) == pytest.approx(0, abs=1e-3)
    assert inception_score(stim, judge=JudgeLogits(judge)) == pytest.approx(inception_score(stim, judge=judge), rel=1e-5, abs=1e-6)

def test_plain_module_as_extractor(stim):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())       # no num_features attribute
    assert fid(stim, stim, judge=net) == pytest.approx(0, abs=1e-4)

def test_metric_errors(judge, stim):
    with pytest.raises(ValueError, match='at least 2 images per set'): fid(stim[:1], stim, judge=judge)
    with pytest.raises(ValueError, match='got neither'): fid(stim, stim)
    with pytest.raises(ValueError, match='not both'): fid(stim, stim, judge=judge, weights_path='inception')
    with pytest.raises(ValueError, match='subset_size'): kid(stim, stim, judge=judge, subset_size=17)
    with pytest.raises(ValueError, match='KID needs at least 2'): kid(stim[:1], stim, judge=judge)
    with pytest.raises(ValueError, match=r'real: expected images \[N, 3, H, W\]'): fid(torch.zeros(4, 32, 32), torch.zeros(4, 3, 8, 8), judge=judge)

# --- k-way ---------------------------------------------------------------------------------------------------
def test_kway_known_answers():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 600)
    perfect = np.eye(10)[y]
    for k in (2, 5, 10):
        m, per = kway_accuracy(perfect, y, k)
        assert m == 1.0 and per.shape == (600,)
    rand = rng.random((600, 10))
    for k in (2, 5, 10): assert kway_accuracy(rand, y, k)[0] == pytest.approx(1 / k, abs=0.04)
    assert kway_accuracy(rand, y, 10)[0] == pytest.approx((rand.argmax(1) == y).mean())      # k = K: top-1
    assert kway_accuracy(np.ones((40, 10)), y[:40], 4)[0] == pytest.approx(0.25)              # ties split
    assert kway_accuracy(torch.from_numpy(rand), torch.from_numpy(y), 3)[0] == pytest.approx(kway_accuracy(rand, y, 3)[0], rel=1e-12)

@pytest.mark.parametrize('k', [0, 1, 11])
def test_kway_k_out_of_range(k):
    with pytest.raises(ValueError, match=r'k: expected an integer in \[2, 10\]'): kway_accuracy(np.ones((3, 10)), [0, 1, 2], k)

def test_kway_bad_labels():
    with pytest.raises(ValueError, match='labels'): kway_accuracy(np.ones((3, 4)), [0, 1, 4], 2)

# --- the standard Inception, offline --------------------------------------------------------------------------
def test_missing_inception_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv('BRAIN2IMAGE_INCEPTION_WEIGHTS', raising=False)
    with pytest.raises(FileNotFoundError, match=INCEPTION_FILE) as e: inception_weights_path(tmp_path)
    assert 'pytorch-fid' in str(e.value) and 'never downloads' in str(e.value)
    monkeypatch.setenv('BRAIN2IMAGE_INCEPTION_WEIGHTS', str(tmp_path / 'nowhere.pth'))
    with pytest.raises(FileNotFoundError, match='nowhere.pth'): inception_weights_path()
    with pytest.raises(FileNotFoundError, match=INCEPTION_FILE): fid(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), weights_path='inception')

class _Payload:
    pass

def test_inception_file_that_runs_code_is_refused(tmp_path):
    p = tmp_path / INCEPTION_FILE
    torch.save({'x': _Payload()}, p)
    with pytest.raises(DataFormatError, match='execute code on load'): inception_extractor(p)
    torch.save({'x': torch.zeros(1)}, p)
    with pytest.raises(DataFormatError, match='not the FID Inception'): inception_extractor(p)

@pytest.mark.slow
def test_inception_path_offline(tmp_path, monkeypatch):
    "torch-fidelity's Inception architecture, random weights saved under the real name: FID(same) ~ 0, FID(different) > 0."
    random_inception_weights(tmp_path / INCEPTION_FILE)
    monkeypatch.setenv('BRAIN2IMAGE_INCEPTION_WEIGHTS', str(tmp_path))
    assert inception_weights_path() == tmp_path / INCEPTION_FILE
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1
    b = (torch.rand(4, 3, 16, 16, generator=g) * 0.5).clamp(-1, 1)
    inc = inception_extractor()
    assert inc.num_features == 2048
    assert fid(a, a, judge=inc) == pytest.approx(0, abs=1e-3)
    assert fid(a, b, judge=inc) > 0.1
    assert inception_score(a[:2], weights_path=tmp_path / INCEPTION_FILE)[0] >= 1.0     # logits_unbiased, found by path
