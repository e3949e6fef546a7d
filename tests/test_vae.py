import numpy as np, pytest, torch
import torch.nn.functional as F
from brain2image.core import DataFormatError
from brain2image.conditioning import StimulusBank
from brain2image.vae import EEGVAE, VAEConfig, train_vae, vae_loss, load_vae, save_vae, kl_weight_at
from weights import assert_same_weights, same_weights

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def onehot(tiny):
    "A stand-in condition per trial (its class, one-hot, plus a little noise so trials differ)."
    g = torch.Generator().manual_seed(0)
    return F.one_hot(torch.from_numpy(tiny.labels), tiny.n_classes).float() + 0.05 * torch.randn(len(tiny), tiny.n_classes, generator=g)



def _vae(tiny, seed=0, **kw):
    torch.manual_seed(seed)
    return EEGVAE(tiny.n_classes, **dict(dict(z_dim=8, image_size=32, ngf=8), **kw))

@pytest.mark.parametrize('size', [32, 64, 128])
def test_shapes(size):
    vae = EEGVAE(12, z_dim=16, image_size=size, ngf=8)
    x, mu, logvar = vae(torch.randn(3, 12))
    assert x.shape == (3, 3, size, size) and mu.shape == logvar.shape == (3, 16)
    assert x.min() >= -1 and x.max() <= 1
    assert vae.generate(torch.randn(3, 16), torch.randn(3, 12)).shape == (3, 3, size, size)
    assert vae.decode(torch.randn(2, 16)).shape == (2, 3, size, size)
    assert EEGVAE(**vae.config).config == vae.config

def test_default_is_paper_size():
    assert EEGVAE(128).image_size == 64

def test_cond_in_decoder():
    vae = EEGVAE(5, z_dim=4, image_size=32, ngf=4, cond_in_decoder=True).eval()
    z = torch.zeros(2, 4)
    a, b = vae.decode(z, torch.zeros(2, 5)), vae.decode(z, torch.ones(2, 5))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match='pass cond'): vae.decode(z)

def test_sample_shapes_and_noise():
    torch.manual_seed(0)
    vae = EEGVAE(6, z_dim=8, image_size=32, ngf=8)
    c = torch.rand(2, 6)
    s = vae.sample(c, n_samples=5, generator=torch.Generator().manual_seed(1))
    assert s.shape == (2, 5, 3, 32, 32)
    torch.testing.assert_close(vae.sample(c, 5, generator=torch.Generator().manual_seed(1)), s, rtol=1e-5, atol=1e-5)   # same seed
    for j in range(1, 5): assert not torch.allclose(s[:, 0], s[:, j])          # different noise, different images
    a, b = vae.generate(torch.randn(2, 8), c), vae.generate(torch.randn(2, 8), c)
    assert (a - b).abs().mean() > 1e-4
    # generate is eval-mode: an image does not depend on the rest of the batch
    one = vae.generate(torch.zeros(1, 8), c[:1])
    assert torch.allclose(one, vae.generate(torch.zeros(2, 8), c)[:1], atol=1e-6)
    assert vae.training                                                        # and the mode is restored

def test_kl_weight_changes_loss():
    torch.manual_seed(0)
    vae = EEGVAE(6, z_dim=8, image_size=32, ngf=8)
    x, mu, logvar = vae(torch.rand(4, 6))
    t = torch.rand(4, 3, 32, 32) * 2 - 1
    l0, l1 = vae_loss(x, t, mu, logvar, kl_weight=0.0), vae_loss(x, t, mu, logvar, kl_weight=1.0)
    assert torch.allclose(l0['loss'], l0['recon']) and l1['kl'] > 0
    assert torch.allclose(l1['loss'], l0['loss'] + l1['kl'])
    assert vae_loss(x, t, mu, logvar, recon='l1')['recon'] != l0['recon']
    # and it changes what training does
    assert kl_weight_at(VAEConfig(kl_weight=2.0, kl_warmup_epochs=4), 1.0) == 0.5

def test_training_decreases_loss(tiny, onehot):
    vae = _vae(tiny)
    h = train_vae(vae, tiny, VAEConfig(epochs=2, batch_size=32), conditions=onehot, progress=False)
    hist = h.history
    assert h.finished and len(hist) == 2
    assert hist[1]['train_loss'] < hist[0]['train_loss'] and hist[1]['val_loss'] < hist[0]['val_loss']
    assert {'val_recon', 'val_kl', 'kl_weight', 'seconds'} <= set(hist[0])

def test_kl_weight_changes_training(tiny, onehot):
    a, b = _vae(tiny), _vae(tiny)
    ha = train_vae(a, tiny, VAEConfig(epochs=1, batch_size=32, kl_weight=0.0), conditions=onehot, progress=False)
    hb = train_vae(b, tiny, VAEConfig(epochs=1, batch_size=32, kl_weight=5.0), conditions=onehot, progress=False)
    assert ha.history[0]['train_loss'] != pytest.approx(hb.history[0]['train_loss'], rel=1e-3)
    assert not torch.allclose(a.mu.weight, b.mu.weight, rtol=1e-4, atol=1e-5)

# repeated and resumed runs agree up to round-off (not bit for bit: BLAS kernels differ with threads and CPU); those tests pin device='cpu'
def test_deterministic(tiny, onehot):
    cfg = VAEConfig(epochs=1, batch_size=32)
    a, b = _vae(tiny), _vae(tiny)
    train_vae(a, tiny, cfg, conditions=onehot, progress=False, device='cpu'); train_vae(b, tiny, cfg, conditions=onehot, progress=False, device='cpu')
    assert_same_weights(a, b)

def test_resume_matches_uninterrupted(tiny, onehot, tmp_path):
    cfg = VAEConfig(epochs=3, batch_size=32, kl_warmup_epochs=2, grid_samples=2)
    full = _vae(tiny)
    hf = train_vae(full, tiny, cfg, out=tmp_path / 'a', conditions=onehot, progress=False, device='cpu')
    part = _vae(tiny)
    h1 = train_vae(part, tiny, cfg, out=tmp_path / 'b', conditions=onehot, progress=False, device='cpu', max_epochs_this_call=2)
    assert not h1.finished and (tmp_path / 'b' / 'vae_checkpoint.pt').exists() and not (tmp_path / 'b' / 'vae.pt').exists()
    fresh = _vae(tiny, seed=99)                     # a new process: other init, other global RNG
    h2 = train_vae(fresh, tiny, cfg, out=tmp_path / 'b', conditions=onehot, progress=False, device='cpu')
    assert h2.finished and h2.epochs_run == hf.epochs_run
    np.testing.assert_allclose([r['val_loss'] for r in h2.history], [r['val_loss'] for r in hf.history], rtol=1e-4, atol=1e-5)
    assert_same_weights(full, fresh)
    assert sorted(p.name for p in (tmp_path / 'a' / 'samples').iterdir()) == ['epoch_000.png', 'epoch_001.png', 'epoch_002.png']

def test_resume_with_more_epochs(tiny, onehot, tmp_path):
    "Asking for more epochs on resume continues the same run: 2 then 3 epochs == 3 epochs at once."
    full = _vae(tiny)
    train_vae(full, tiny, VAEConfig(epochs=3, batch_size=32), out=tmp_path / 'a', conditions=onehot, progress=False, device='cpu')
    ext = _vae(tiny)
    train_vae(ext, tiny, VAEConfig(epochs=2, batch_size=32), out=tmp_path / 'b', conditions=onehot, progress=False, device='cpu')
    h = train_vae(_vae(tiny, seed=5), tiny, VAEConfig(epochs=3, batch_size=32), out=tmp_path / 'b', conditions=onehot, progress=False, device='cpu')
    assert [r['epoch'] for r in h.history] == [0, 1, 2]
    back = load_vae(tmp_path / 'b' / 'vae.pt', device='cpu')
    assert_same_weights(full, back)

def test_keep_best(tiny, onehot):
    cfg = VAEConfig(epochs=3, batch_size=32, lr=3e-2)         # a high rate, so that the last epoch need not be the best
    best, last = _vae(tiny), _vae(tiny)
    hb = train_vae(best, tiny, cfg, conditions=onehot, progress=False, device='cpu')
    hl = train_vae(last, tiny, VAEConfig(**dict(vars(cfg), keep_best=False)), conditions=onehot, progress=False, device='cpu')
    vals = [r['val_loss'] for r in hb.history]
    assert hb.best_epoch == int(np.argmin(vals)) and hb.best_score == min(vals)
    np.testing.assert_allclose([r['val_loss'] for r in hl.history], vals, rtol=1e-4, atol=1e-5)   # keep_best does not change training
    assert same_weights(best, last) == (hb.best_epoch == 2)

def test_resume_refuses_other_model(tiny, onehot, tmp_path):
    train_vae(_vae(tiny), tiny, VAEConfig(epochs=1, batch_size=32), out=tmp_path, conditions=onehot, progress=False)
    with pytest.raises(DataFormatError, match='identity.model'):
        train_vae(_vae(tiny, z_dim=4), tiny, VAEConfig(epochs=2, batch_size=32), out=tmp_path, conditions=onehot, progress=False)

def test_load_vae_round_trip(tiny, onehot, tmp_path):
    vae = _vae(tiny)
    train_vae(vae, tiny, VAEConfig(epochs=1, batch_size=32), out=tmp_path, conditions=onehot, progress=False, device='cpu',
              extra=dict(encoder_config=dict(name='conv', n_chans=32), arr=np.arange(3), cond_mode='posterior'))
    back = load_vae(tmp_path / 'vae.pt', device='cpu')
    vae.cpu()
    assert back.config == vae.config and not back.training
    for k, v in vae.state_dict().items(): assert torch.equal(v, back.state_dict()[k]), k   # stored and loaded: exact
    z = torch.randn(4, 8)
    torch.testing.assert_close(back.generate(z, onehot[:4]), vae.generate(z, onehot[:4]), rtol=1e-5, atol=1e-5)   # run again: round-off
    assert back.extra['encoder_config']['name'] == 'conv' and back.extra['cond_mode'] == 'posterior'
    assert torch.equal(back.extra['arr'], torch.arange(3)) and back.extra['train_config']['epochs'] == 1
    p = save_vae(tmp_path / 'again.pt', back)
    assert load_vae(p, device='cpu').config == vae.config
    bad = tmp_path / 'bad.pt'; torch.save(dict(kind='other'), bad)
    with pytest.raises(DataFormatError, match='save_vae'): load_vae(bad)
    with pytest.raises(TypeError, match='cannot be stored'): save_vae(tmp_path / 'x.pt', vae, extra=dict(f=object()))

def test_condition_size_mismatch(tiny, onehot):
    vae = _vae(tiny)
    with pytest.raises(ValueError, match=r'expects conditions \[batch, 4\], got shape \(2, 7\)'): vae(torch.rand(2, 7))
    with pytest.raises(ValueError, match=r'expects conditions \[batch, 4\], got shape \(2, 7\)'): vae.sample(torch.rand(2, 7))
    with pytest.raises(ValueError, match=r'expects conditions \[batch, 4\]'): vae.generate(torch.rand(2, 8), torch.rand(2, 7))
    with pytest.raises(DataFormatError, match=r'expected \[320 trials, 4\].*got \(320, 7\)'):
        train_vae(vae, tiny, VAEConfig(epochs=1), conditions=torch.rand(len(tiny), 7), progress=False)
    with pytest.raises(DataFormatError, match=r'got \(10, 4\)'):
        train_vae(vae, tiny, VAEConfig(epochs=1), conditions=onehot[:10], progress=False)
    with pytest.raises(ValueError, match='noise'): vae.generate(torch.rand(2, 3), onehot[:2])
    with pytest.raises(ValueError, match='px'): train_vae(vae, tiny, VAEConfig(epochs=1), bank=StimulusBank(tiny, 64), conditions=onehot, progress=False)
    with pytest.raises(DataFormatError, match="no split 'by_run'"):
        train_vae(vae, tiny, VAEConfig(epochs=1, split='by_run'), conditions=onehot, progress=False)

def test_bad_recipe(tiny, onehot):
    with pytest.raises(ValueError, match="VAEConfig.recon='l3'"): VAEConfig(recon='l3')
    with pytest.raises(TypeError, match='recipe must be a VAEConfig'): train_vae(_vae(tiny), tiny, dict(epochs=1), conditions=onehot)
    with pytest.raises(ValueError, match='pass conditions'): train_vae(_vae(tiny), tiny, VAEConfig(epochs=1))   # conditions are required

def test_bad_arguments():
    with pytest.raises(ValueError, match='expected 32, 64 or 128'): EEGVAE(4, image_size=100)
    with pytest.raises(ValueError, match='z_dim=0'): EEGVAE(4, z_dim=0)
    with pytest.raises(ValueError, match="recon='bce'"): vae_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.zeros(1, 2), torch.zeros(1, 2), recon='bce')
