import numpy as np, pytest, torch
from brain2image.core import DataFormatError
from brain2image.conditioning import StimulusBank, generate_images
from brain2image.diffusion import (DiffusionConfig, DiffusionRecipe, EEGDiffusion, diffusion_loss, train_diffusion,
                                   save_diffusion, load_diffusion)
from weights import assert_same_weights

pytestmark = pytest.mark.usefixtures('one_thread')

def _model(cond_dim=4, seed=0, **kw):
    torch.manual_seed(seed)
    return EEGDiffusion(DiffusionConfig(**dict(dict(cond_dim=cond_dim, block_out_channels=(8, 16)), **kw)), sample_steps=3)

RECIPE = dict(epochs=2, batch_size=32, sample_steps=3, grid_samples=1)

def test_contract():
    m = _model(6)
    assert m.z_dim == 3 * 32 * 32 and m.image_size == 32 and m.cond_dim == 6 and m.has_mean_code is False
    assert type(m.unet).__name__ == 'UNet2DModel' and m.unet.config.class_embed_type == 'identity'
    c = torch.rand(3, 6)
    x = m.generate(torch.randn(3, m.z_dim), c)
    assert x.shape == (3, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    imgs = generate_images(m, c, n_samples=2, seed=1)
    assert imgs.shape == (3, 2, 3, 32, 32) and (imgs[:, 0] - imgs[:, 1]).abs().mean() > 1e-3   # two draws differ
    assert EEGDiffusion(m.config).config == m.config and isinstance(m.config, dict)
    assert m.training                                                       # generate restores the mode

@pytest.mark.parametrize('sampler', ['ddim', 'dpm'])
def test_deterministic_for_same_noise(sampler):
    m = _model()
    z, c = torch.randn(2, m.z_dim), torch.rand(2, 4)
    a = m.generate(z, c, sampler=sampler)
    torch.testing.assert_close(m.generate(z, c, sampler=sampler), a, rtol=1e-5, atol=1e-5)
    assert (m.generate(torch.randn(2, m.z_dim), c, sampler=sampler) - a).abs().mean() > 1e-3
    one = m.generate(z[:1], c[:1], sampler=sampler)                        # a row does not depend on the rest of the batch
    torch.testing.assert_close(one, a[:1], rtol=1e-4, atol=1e-4)

def test_guidance_and_null():
    m = _model()
    with torch.no_grad():                                                   # an untrained null is zero: make it differ from the condition
        m.null.normal_(); m.cond_proj.weight.mul_(20)
    z, c = torch.randn(2, m.z_dim), torch.rand(2, 4)
    g1, g3, g0 = m.generate(z, c, guidance=1.0), m.generate(z, c, guidance=3.0), m.generate(z, c, guidance=0.0)
    assert (g1 - g3).abs().mean() > 1e-3                                    # guidance changes the images
    # guidance 0 is the unconditional model: the condition no longer matters
    torch.testing.assert_close(g0, m.generate(z, torch.rand(2, 4), guidance=0.0), rtol=1e-5, atol=1e-5)
    assert (g1 - m.generate(z, torch.rand(2, 4) * 5, guidance=1.0)).abs().mean() > 1e-3
    e = m.embed(c, torch.tensor([True, False]))
    torch.testing.assert_close(e[0], m.null.detach()); torch.testing.assert_close(e[1], m.cond_proj(c[1]))

def test_loss_targets():
    "The loss regresses the noise (epsilon) or the velocity sqrt(a) eps - sqrt(1 - a) x0 (v_prediction, the default)."
    v = _model(); e = _model(prediction_type='epsilon'); e.load_state_dict(v.state_dict())
    assert v.cfg.prediction_type == 'v_prediction'
    x0, c, t = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 4), torch.tensor([3, 700])
    noise = torch.randn_like(x0)
    with torch.no_grad():
        a = v.scheduler.alphas_cumprod[t][:, None, None, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        pred = v(x_t, t, c)
        torch.testing.assert_close(diffusion_loss(e, x0, c, noise, t), ((pred - noise) ** 2).mean(), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(diffusion_loss(v, x0, c, noise, t), ((pred - (a.sqrt() * noise - (1 - a).sqrt() * x0)) ** 2).mean(),
                                   rtol=1e-4, atol=1e-6)

def test_training_decreases_loss(tiny_onehot):
    ds, onehot = tiny_onehot
    m = _model()
    h = train_diffusion(m, ds, DiffusionRecipe(**dict(RECIPE, epochs=3)), conditions=onehot, progress=False, device='cpu')
    assert h.finished and len(h.history) == 3 and h.monitor == 'val_loss'
    assert h.history[-1]['train_loss'] < h.history[0]['train_loss'] and h.history[-1]['val_loss'] < h.history[0]['val_loss']
    assert m.sampling == dict(guidance=2.0, sample_steps=3, sampler='ddim')   # the recipe's sampling settings

def test_resume_matches_uninterrupted_and_round_trip(tiny_onehot, tmp_path):
    ds, onehot = tiny_onehot
    cfg = DiffusionRecipe(**RECIPE)
    full = _model()
    hf = train_diffusion(full, ds, cfg, conditions=onehot, out=tmp_path / 'a', progress=False, device='cpu',
                         extra=dict(cond_mode='onehot', arr=np.arange(3)))
    part = _model()
    h1 = train_diffusion(part, ds, cfg, conditions=onehot, out=tmp_path / 'b', progress=False, device='cpu', max_epochs_this_call=1)
    assert not h1.finished and (tmp_path / 'b' / 'diffusion_checkpoint.pt').exists() and not (tmp_path / 'b' / 'diffusion.pt').exists()
    fresh = _model(seed=99)                                                 # a new process: other init
    h2 = train_diffusion(fresh, ds, cfg, conditions=onehot, out=tmp_path / 'b', progress=False, device='cpu')
    assert h2.finished and h2.epochs_run == hf.epochs_run
    np.testing.assert_allclose([r['val_loss'] for r in h2.history], [r['val_loss'] for r in hf.history], rtol=1e-4, atol=1e-5)
    assert_same_weights(full, fresh)
    assert sorted(p.name for p in (tmp_path / 'a' / 'samples').iterdir()) == ['epoch_000.png', 'epoch_001.png']
    back = load_diffusion(tmp_path / 'a' / 'diffusion.pt', device='cpu')
    assert back.config == full.config and back.sampling == full.sampling and not back.training
    for k, v in full.state_dict().items(): assert torch.equal(v, back.state_dict()[k]), k
    z = torch.randn(2, back.z_dim)
    torch.testing.assert_close(back.generate(z, onehot[:2]), full.generate(z, onehot[:2]), rtol=1e-5, atol=1e-5)
    assert back.extra['cond_mode'] == 'onehot' and torch.equal(back.extra['arr'], torch.arange(3))
    assert back.extra['train_config']['epochs'] == 2
    assert load_diffusion(save_diffusion(tmp_path / 'again.pt', back), device='cpu').config == full.config
    bad = tmp_path / 'bad.pt'; torch.save(dict(kind='other'), bad)
    with pytest.raises(DataFormatError, match='save_diffusion'): load_diffusion(bad)

def test_resume_refuses_other_architecture(tiny_onehot, tmp_path):
    ds, onehot = tiny_onehot
    train_diffusion(_model(), ds, DiffusionRecipe(**dict(RECIPE, epochs=1)), conditions=onehot, out=tmp_path, progress=False)
    with pytest.raises(DataFormatError, match='identity.model'):
        train_diffusion(_model(block_out_channels=(16, 16)), ds, DiffusionRecipe(**RECIPE), conditions=onehot, out=tmp_path, progress=False)

def test_condition_shape_errors(tiny_onehot):
    ds, onehot = tiny_onehot
    m = _model()
    with pytest.raises(ValueError, match=r'expects conditions \[batch, 4\], got shape \(2, 7\)'): m.generate(torch.randn(2, m.z_dim), torch.rand(2, 7))
    with pytest.raises(ValueError, match=r'expects conditions \[batch, 4\], got shape \(2, 7\)'): m.sample(torch.rand(2, 7))
    with pytest.raises(ValueError, match=r'expects noise \[2, 3072\]'): m.generate(torch.randn(2, 5), onehot[:2])
    with pytest.raises(DataFormatError, match=r'expected \[320 trials, 4\].*got \(320, 7\)'):
        train_diffusion(m, ds, DiffusionRecipe(epochs=1), conditions=torch.rand(len(ds), 7), progress=False)
    with pytest.raises(DataFormatError, match=r'got \(10, 4\)'):
        train_diffusion(m, ds, DiffusionRecipe(epochs=1), conditions=onehot[:10], progress=False)
    with pytest.raises(ValueError, match='px'):
        train_diffusion(m, ds, DiffusionRecipe(epochs=1), bank=StimulusBank(ds, 64), conditions=onehot, progress=False)
    with pytest.raises(DataFormatError, match="no split 'by_run'"):
        train_diffusion(m, ds, DiffusionRecipe(epochs=1, split='by_run'), conditions=onehot, progress=False)

def test_bad_arguments():
    with pytest.raises(ValueError, match="DiffusionRecipe.sampler='euler'"): DiffusionRecipe(sampler='euler')
    with pytest.raises(ValueError, match='DiffusionConfig.image_size=128'): DiffusionConfig(image_size=128)
    with pytest.raises(ValueError, match='norm_groups'): DiffusionConfig(block_out_channels=(12, 24))
    with pytest.raises(TypeError, match='recipe must be a DiffusionRecipe'): train_diffusion(_model(), None, dict(epochs=1), conditions=torch.zeros(1, 4))
    with pytest.raises(ValueError, match='pass conditions'): train_diffusion(_model(), None, DiffusionRecipe(epochs=1))
    with pytest.raises(ValueError, match='sample_steps=0'): _model().set_sampling(sample_steps=0)
    with pytest.raises(TypeError, match='must be a DiffusionConfig'): EEGDiffusion(42)
