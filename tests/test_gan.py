import numpy as np, pytest, torch
import torch.nn.functional as F
from brain2image.core import DataFormatError
from brain2image.gan import (ConditionalGAN, Generator, Discriminator, GANConfig, gan_config, train_gan, load_gan, gan_step)
from brain2image.synthetic import make_synthetic
from weights import assert_same_weights


@pytest.fixture(scope='module')
def tiny():
    ds = make_synthetic('tiny', progress=False)
    cond = F.one_hot(torch.from_numpy(ds.labels), ds.n_classes).float()   # a stand-in for encoder posteriors
    return ds, cond

@pytest.mark.parametrize('size', [32, 64, 128])
def test_shapes(size):
    for preset in ('paper', 'stable'):
        gan = ConditionalGAN(gan_config(preset, image_size=size, ngf=8, ndf=8), cond_dim=128, n_classes=40).eval()
        x = gan.generate(torch.randn(2, gan.z_dim), torch.randn(2, 128))
        assert x.shape == (2, 3, size, size) and x.abs().max() <= 1
        out, aux = gan.D(x, torch.randn(2, 128))
        assert out.shape == (2,) and (aux is None) == (preset == 'paper')

def test_paper_defaults():
    cfg = gan_config('paper')
    assert (cfg.z_dim, cfg.image_size, cfg.cond_mode, cfg.loss, cfg.lr_g, cfg.betas) == (100, 64, 'feature', 'bce', 2e-4, (0.5, 0.999))
    gan = ConditionalGAN(cfg, 128, 40)
    assert gan.G.fc.in_features == 100 + 128

@pytest.mark.parametrize('switch', [dict(loss='hinge'), dict(spectral_norm=True, d_norm='none'), dict(projection=True),
                                    dict(diffaugment='color,translation,cutout'), dict(matching_aware=True), dict(aux_classifier=True),
                                    dict(cond_bn=True)])
def test_each_switch_trains_a_step(switch, tiny):
    ds, cond = tiny
    gan = ConditionalGAN(gan_config('paper', image_size=32, ngf=8, ndf=8, **switch), ds.n_classes, ds.n_classes)
    og, od = (torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999)) for m in (gan.G, gan.D))
    y = torch.from_numpy(ds.labels[:16])
    r = gan_step(gan, og, od, torch.rand(16, 3, 32, 32) * 2 - 1, cond[:16], y)
    assert all(np.isfinite(v) for v in r.values())

def test_train_resume_and_load(tiny, tmp_path):
    ds, cond = tiny
    cfg = gan_config('stable', ngf=8, ndf=8, epochs=3)
    torch.manual_seed(0); a = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    ha = train_gan(a, ds, cond, out=tmp_path / 'a', progress=False)
    assert ha['finished'] and len(ha['history']) == 3
    assert len(list((tmp_path / 'a' / 'samples').glob('epoch_*.png'))) == 3
    torch.manual_seed(0); b = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    train_gan(b, ds, cond, out=tmp_path / 'b', progress=False, max_epochs_this_call=1)
    torch.manual_seed(5); c = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    hc = train_gan(c, ds, cond, out=tmp_path / 'b', progress=False)
    np.testing.assert_allclose([h['loss_d'] for h in hc['history']], [h['loss_d'] for h in ha['history']], rtol=1e-4, atol=1e-5)
    assert_same_weights(a, c)
    back = load_gan(tmp_path / 'a' / 'gan.pt')
    z = torch.randn(4, cfg.z_dim)
    torch.testing.assert_close(back.generate(z, cond[:4]), a.generate(z, cond[:4]), rtol=1e-5, atol=1e-5)   # images in [-1, 1]

def test_bad_conditions(tiny):
    ds, cond = tiny
    gan = ConditionalGAN(gan_config('stable', ngf=8, ndf=8, epochs=1), ds.n_classes, ds.n_classes)
    with pytest.raises(DataFormatError, match='expected \\[320 trials, 4\\]'): train_gan(gan, ds, cond[:, :3], progress=False)
    with pytest.raises(ValueError, match='unknown GAN preset'): gan_config('big')
    with pytest.raises(ValueError, match='image_size=48'): Generator(10, image_size=48)

def test_finetune_encoder_changes_encoder(tiny):
    from brain2image.encoders import make_encoder
    ds, _ = tiny
    enc = make_encoder('transformer', ds.n_chans, ds.n_times, ds.n_classes)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    gan = ConditionalGAN(gan_config('stable', ngf=8, ndf=8, epochs=1, finetune_encoder=True), ds.n_classes, ds.n_classes)
    train_gan(gan, ds, encoder=enc, progress=False)
    assert any(not torch.equal(before[k], v) for k, v in enc.state_dict().items())
