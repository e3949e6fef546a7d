"Known answers of the reconstruction metrics (brain2image.recon_metrics): PixCorr, SSIM, two-way identification, offline extractors."
import pytest, torch
import torch.nn.functional as F
from brain2image.core import DataFormatError
from brain2image.recon_metrics import (pixcorr, ssim_score, two_way_identification, reconstruction_metrics, alexnet_extractor,
                                       alexnet_weights_path, ALEXNET_FILE, _derangement)

pytestmark = pytest.mark.usefixtures('one_thread')

def blobs(n, size=32, seed=0):
    "n smooth random RGB images in [-1, 1] (structured: neighbouring pixels correlate)."
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.randn(n, 3, 4, 4, generator=g), size=(size, size), mode='bicubic', align_corners=False)
    return (x / x.abs().amax((1, 2, 3), keepdim=True)).clamp(-1, 1)

def uniform(n, size=32, seed=0):
    "n images of independent uniform pixels in [-1, 1]."
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1

@pytest.mark.parametrize('make', [blobs, uniform])
def test_identical_images(make):
    x = make(30)
    assert pixcorr(x, x) == pytest.approx(1.0, abs=1e-6)
    assert ssim_score(x, x) == pytest.approx(1.0, abs=1e-5)
    assert ssim_score(x, x, grayscale=False) == pytest.approx(1.0, abs=1e-5)
    assert two_way_identification(x.flatten(1), x.flatten(1)) == 1.0
    m = reconstruction_metrics(x, x)
    assert m['PixCorr']['value'] == pytest.approx(1.0, abs=1e-6) and m['SSIM']['value'] == pytest.approx(1.0, abs=1e-5)
    assert m['PixCorr']['chance'] == 0.0 and m['SSIM']['chance'] < 0.5 and m['SSIM']['shuffled'] == m['SSIM']['chance']
    assert abs(m['PixCorr']['shuffled']) < 0.2                                   # another pair's image: about 0

@pytest.mark.parametrize('make', [blobs, uniform])
def test_deranged_pairs_at_chance(make):
    x = make(200, seed=1)
    d = torch.from_numpy(_derangement(len(x), 0))
    assert (d != torch.arange(len(x))).all()                                     # a derangement: no image keeps its own
    y = x[d]
    assert abs(pixcorr(x, y)) < 0.05
    assert abs(two_way_identification(x.flatten(1), y.flatten(1)) - 0.5) < 0.05
    m = reconstruction_metrics(x, y, seed=3)
    assert m['SSIM']['value'] == pytest.approx(m['SSIM']['chance'], abs=0.05)   # SSIM's chance is measured on deranged pairs
    lo, hi = m['PixCorr']['ci_low'], m['PixCorr']['ci_high']
    assert lo < m['PixCorr']['value'] < hi and lo < 0.05 and hi > -0.05

def test_partial_reconstructions_rank_between():
    x = blobs(60, seed=2)
    noisy = (x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert 0.3 < pixcorr(x, noisy) < 0.99
    assert 0.7 < two_way_identification(x.flatten(1), noisy.flatten(1)) <= 1.0
    assert ssim_score(x, x[torch.roll(torch.arange(60), 1)]) < ssim_score(x, noisy) < 1

def test_repeated_stimuli_and_ties():
    f = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    dup = torch.cat([f, f])                                                      # every stimulus seen twice: its copy is left out
    assert two_way_identification(dup, dup) == 1.0
    assert two_way_identification(dup, dup, same=torch.eye(10, dtype=torch.bool)) == pytest.approx(1 - 0.5 / 9)   # kept: a tie, half
    assert two_way_identification(f, torch.ones(5, 16)) == 0.5                    # constant reconstructions: every comparison a tie
    x = torch.cat([blobs(5), blobs(5)])
    assert reconstruction_metrics(x, x, judge=None)['PixCorr']['value'] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='2 distinct images'): two_way_identification(f[:1].expand(4, -1), f[:4])

def test_resize_and_errors():
    x = blobs(6)
    big = F.interpolate(x, size=(64, 64), mode='bilinear', align_corners=False)
    assert pixcorr(x, big) > 0.95                                                 # fake resized to real's size
    with pytest.raises(ValueError, match='6 real and 5 fake'): pixcorr(x, x[:5])
    with pytest.raises(ValueError, match=r'\[-1, 1\]'): ssim_score(x, (x + 1) * 127.5)
    with pytest.raises(ValueError, match=r'\[N, 3, H, W\]'): pixcorr(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match='NaN'): pixcorr(x, x * float('nan'))
    with pytest.raises(ValueError, match='11 x 11'): ssim_score(x[..., :8, :8], x[..., :8, :8])
    with pytest.raises(ValueError, match='same shape'): two_way_identification(x.flatten(1), x[:5].flatten(1))
    with pytest.raises(ValueError, match='at least 2'): two_way_identification(x[:1].flatten(1), x[:1].flatten(1))
    with pytest.raises(ValueError, match='judge: expected a Judge'): reconstruction_metrics(x, x, judge='judge')

def test_alexnet_missing_file_named(tmp_path, monkeypatch):
    monkeypatch.delenv('BRAIN2IMAGE_ALEXNET_WEIGHTS', raising=False)
    p = tmp_path / 'nowhere' / ALEXNET_FILE
    with pytest.raises(FileNotFoundError, match='never downloads') as e: alexnet_extractor(p)
    assert str(p) in str(e.value)
    with pytest.raises(FileNotFoundError) as e: reconstruction_metrics(blobs(4), blobs(4), alexnet_weights=p)
    assert str(p) in str(e.value)

def test_alexnet_random_weights_file(tmp_path, monkeypatch):
    import torchvision
    torch.manual_seed(0); torch.save(torchvision.models.alexnet(weights=None).state_dict(), tmp_path / ALEXNET_FILE)
    monkeypatch.setenv('BRAIN2IMAGE_ALEXNET_WEIGHTS', str(tmp_path))            # found by name in the folder
    assert alexnet_weights_path() == tmp_path / ALEXNET_FILE
    feats = alexnet_extractor(size=64)(blobs(3))
    assert feats['AlexNet(2)'].shape == (3, 192 * 7 * 7) and feats['AlexNet(5)'].shape == (3, 256 * 3 * 3)
    x = blobs(12, seed=4)
    m = reconstruction_metrics(x, x, alexnet_weights='alexnet')
    assert m['2-way AlexNet(2)']['value'] == 1.0 and m['2-way AlexNet(5)']['value'] == 1.0
    assert m['2-way AlexNet(2)']['chance'] == 0.5
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(DataFormatError, match='other.pth'): alexnet_extractor(tmp_path / 'other.pth')

def test_judge_features(judge, tiny):
    from brain2image.image_classifier import images_to_tensor
    stim = images_to_tensor(tiny.images)
    same = reconstruction_metrics(stim, stim, judge=judge)
    assert same['2-way judge']['value'] == 1.0 and same['2-way judge']['n'] == len(stim)
    twice = torch.cat([stim, stim])                                              # trials that saw the same stimulus
    assert reconstruction_metrics(twice, twice, judge=judge)['2-way judge']['value'] == 1.0
    d = torch.from_numpy(_derangement(len(stim), 1))
    shuf = reconstruction_metrics(stim, stim[d], judge=judge)
    assert shuf['2-way judge']['value'] < 0.8                                    # 16 images, 4 classes: near 0.5, far from 1
    print({k: round(v['value'], 3) for k, v in shuf.items()})

def test_inception_two_way_from_local_file(tmp_path):
    from brain2image.fidelity import random_inception_weights, INCEPTION_FILE
    p = random_inception_weights(tmp_path / INCEPTION_FILE)                      # random weights: only the known answers hold
    x = blobs(6, seed=5)
    m = reconstruction_metrics(x, x, inception_weights=p)
    assert m['2-way Inception']['value'] == 1.0 and m['2-way Inception']['n'] == 6
    with pytest.raises(FileNotFoundError, match='never downloads'): reconstruction_metrics(x, x, inception_weights=tmp_path / 'none.pth')

@pytest.mark.slow
def test_run_reports_alexnet_two_way(tmp_path, monkeypatch):
    "evaluation.alexnet_weights in a run's config: checked before anything trains, then two-way in AlexNet(2)/(5) for every generator."
    import torchvision
    from brain2image.config import get_preset, validate_config
    from brain2image.pipeline import run
    monkeypatch.delenv('BRAIN2IMAGE_ALEXNET_WEIGHTS', raising=False)
    cfg = get_preset('tiny'); cfg['evaluation']['alexnet_weights'] = str(tmp_path / 'missing' / ALEXNET_FILE)
    with pytest.raises(FileNotFoundError, match='missing'): validate_config(cfg)
    torch.manual_seed(0); torch.save(torchvision.models.alexnet(weights=None).state_dict(), tmp_path / ALEXNET_FILE)
    cfg['evaluation']['alexnet_weights'] = str(tmp_path / ALEXNET_FILE)
    cfg['generators'] = {'vae': cfg['generators']['vae']}
    m = run(cfg, tmp_path / 'r', progress=False, cache=False)
    rec = m['generation']['vae']['recon']
    eeg = rec['eeg'] if 'eeg' in rec else rec
    assert {'2-way AlexNet(2)', '2-way AlexNet(5)', '2-way judge'} <= set(eeg), sorted(eeg)
    assert 0 <= eeg['2-way AlexNet(5)']['value'] <= 1 and eeg['2-way AlexNet(5)']['chance'] == 0.5

def test_extra_extractors_and_concept_clusters():
    x = blobs(40)
    y = torch.cat([x[:20], x[20:][torch.randperm(20, generator=torch.Generator().manual_seed(1))]])   # half right, half another's
    groups = torch.arange(40) // 10                                   # 4 concepts of 10 trials: the right half is 2 whole concepts
    plain = reconstruction_metrics(x, y, extractors={'pixels': lambda a: a.flatten(1)})
    clus = reconstruction_metrics(x, y, extractors={'pixels': lambda a: a.flatten(1)}, groups=groups.numpy())
    assert plain['2-way pixels']['value'] == clus['2-way pixels']['value'] > 0.7
    width = lambda m: m['2-way pixels']['ci_high'] - m['2-way pixels']['ci_low']
    assert width(clus) > 1.5 * width(plain)                           # 4 concepts are 4 observations, not 40
