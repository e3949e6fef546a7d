import numpy as np, pytest, torch
from brain2image.core import DataFormatError
from brain2image.gan import (ConditionalGAN, Generator, GANRecipe, gan_config, gan_preset, train_gan,
                            load_gan, gan_step)
from weights import assert_same_weights


@pytest.mark.parametrize('size', [32, 64, 128])
def test_shapes(size):
    for preset in ('paper', 'stable'):
        gan = ConditionalGAN(gan_config(preset, image_size=size, ngf=8, ndf=8), cond_dim=128, n_classes=40).eval()
        x = gan.generate(torch.randn(2, gan.z_dim), torch.randn(2, 128))
        assert x.shape == (2, 3, size, size) and x.abs().max() <= 1
        out, aux = gan.D(x, torch.randn(2, 128))
        assert out.shape == (2,) and (aux is None) == (preset == 'paper')

def test_paper_defaults():
    cfg, rc = gan_preset('paper')
    assert (cfg.z_dim, cfg.image_size, cfg.cond_mode, rc.loss, rc.lr_g, rc.betas) == (100, 64, 'feature', 'bce', 2e-4, (0.5, 0.999))
    assert rc == GANRecipe()     # the paper's recipe is train_gan's default
    gan = ConditionalGAN(cfg, 128, 40)
    assert gan.G.fc.in_features == 100 + 128

@pytest.mark.parametrize('switch', [dict(loss='hinge'), dict(spectral_norm=True, d_norm='none'), dict(projection=True),
                                    dict(diffaugment='color,translation,cutout'), dict(matching_aware=True), dict(aux_classifier=True),
                                    dict(cond_bn=True)])
def test_each_switch_trains_a_step(switch, tiny_onehot):
    ds, cond = tiny_onehot
    cfg, rc = gan_preset('paper', image_size=32, ngf=8, ndf=8, **switch)
    torch.manual_seed(0); gan = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    torch.manual_seed(0); ref = ConditionalGAN(gan_config('paper', image_size=32, ngf=8, ndf=8), ds.n_classes, ds.n_classes)
    y = torch.from_numpy(ds.labels[:16]); real = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    losses = []
    for g, r in ((gan, rc), (ref, GANRecipe())):
        og, od = (torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999)) for m in (g.G, g.D))
        torch.manual_seed(2); losses.append(gan_step(g, r, og, od, real, cond[:16], y))
    assert all(np.isfinite(v) for v in losses[0].values())
    assert losses[0]['loss_d'] != pytest.approx(losses[1]['loss_d'], rel=1e-4)   # the switch is not ignored: D's loss changes

def test_train_resume_and_load(tiny_onehot, tmp_path):
    ds, cond = tiny_onehot
    cfg, rc = gan_preset('stable', ngf=8, ndf=8, epochs=3)
    torch.manual_seed(0); a = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    ha = train_gan(a, ds, rc, conditions=cond, out=tmp_path / 'a', progress=False)
    assert ha.finished and ha.epochs_run == 3 and ha.best_epoch == 2 and ha.monitor is None
    assert len(list((tmp_path / 'a' / 'samples').glob('epoch_*.png'))) == 3
    torch.manual_seed(0); b = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    hb = train_gan(b, ds, rc, conditions=cond, out=tmp_path / 'b', progress=False, max_epochs_this_call=1)
    assert not hb.finished and not (tmp_path / 'b' / 'gan.pt').exists()
    torch.manual_seed(5); c = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    hc = train_gan(c, ds, rc, conditions=cond, out=tmp_path / 'b', progress=False)
    np.testing.assert_allclose([h['loss_d'] for h in hc.history], [h['loss_d'] for h in ha.history], rtol=1e-4, atol=1e-5)
    assert_same_weights(a, c)
    back = load_gan(tmp_path / 'a' / 'gan.pt')
    z = torch.randn(4, cfg.z_dim)
    torch.testing.assert_close(back.generate(z, cond[:4]), a.generate(z, cond[:4]), rtol=1e-5, atol=1e-5)   # images in [-1, 1]
    assert back.cfg == cfg and back.extra['train_config'] == rc.to_dict()
    with pytest.raises(DataFormatError, match='identity.recipe'):    # another recipe in the same folder is refused, naming the field
        train_gan(ConditionalGAN(cfg, ds.n_classes, ds.n_classes), ds, GANRecipe(**{**rc.to_dict(), 'betas': (0.5, 0.9)}),
                  conditions=cond, out=tmp_path / 'a', progress=False)

def test_load_gan_from_before_the_recipe_split(tiny_onehot, tmp_path):
    "A gan.pt whose config held the recipe too (older files) still loads; the recipe lands in extra['train_config']."
    from brain2image.fitting import save_checkpoint
    ds, cond = tiny_onehot
    torch.manual_seed(0); gan = ConditionalGAN(gan_config('stable', ngf=8, ndf=8), ds.n_classes, ds.n_classes)
    old = dict(gan.cfg.to_dict(), loss='hinge', lr_g=1e-3, betas=[0.0, 0.999], epochs=60)
    save_checkpoint(tmp_path / 'old.pt', dict(kind='brain2image.gan', gan_config=old, cond_dim=ds.n_classes, n_classes=ds.n_classes,
                                              gan=gan.state_dict(), extra={}))
    back = load_gan(tmp_path / 'old.pt')
    assert back.cfg == gan.cfg and back.extra['train_config']['loss'] == 'hinge'

def test_bad_conditions(tiny_onehot):
    ds, cond = tiny_onehot
    cfg, rc = gan_preset('stable', ngf=8, ndf=8, epochs=1)
    gan = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    with pytest.raises(DataFormatError, match='expected \\[320 trials, 4\\]'): train_gan(gan, ds, rc, conditions=cond[:, :3], progress=False)
    with pytest.raises(DataFormatError, match="no split 'by_run'"):
        train_gan(gan, ds, GANRecipe(epochs=1, split='by_run'), conditions=cond, progress=False)
    from dataclasses import replace
    with pytest.raises(ValueError, match='pass conditions'): train_gan(gan, ds, replace(rc, train_on='eeg'), progress=False)
    feat = ConditionalGAN(replace(cfg, cond_mode='feature', temperature=1.0), 8, ds.n_classes)     # class codes need one condition entry per class
    with pytest.raises(ValueError, match="train_on='class' needs cond_mode='posterior'"): train_gan(feat, ds, rc, conditions=torch.zeros(len(ds), 8), progress=False)
    with pytest.raises(TypeError, match='recipe must be a GANRecipe'): train_gan(gan, ds, cfg, conditions=cond, progress=False)
    with pytest.raises(ValueError, match='unknown GAN preset'): gan_config('big')
    with pytest.raises(ValueError, match="GANRecipe.loss='wgan'"): gan_preset('stable', loss='wgan')
    with pytest.raises(ValueError, match='GANRecipe field'): gan_config('stable', lr_g=1e-3)
    with pytest.raises(TypeError, match='must be a GANConfig'): ConditionalGAN(rc, 4, 4)
    with pytest.raises(ValueError, match='image_size=48'): Generator(10, image_size=48)

def test_finetune_encoder_changes_encoder(tiny_onehot):
    from brain2image.encoders import make_encoder
    ds, _ = tiny_onehot
    enc = make_encoder('transformer', ds.n_chans, ds.n_times, ds.n_classes)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    cfg, rc = gan_preset('stable', ngf=8, ndf=8, epochs=1, finetune_encoder=True, train_on='eeg')
    gan = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    train_gan(gan, ds, rc, encoder=enc, progress=False)
    assert any(not torch.equal(before[k], v) for k, v in enc.state_dict().items())

def test_class_codes_and_temperature(tiny_onehot):
    "The stable preset learns from class codes (no EEG conditions needed); its temperature sharpens posteriors when generating, one-hot codes unchanged."
    from dataclasses import replace
    ds, _ = tiny_onehot
    cfg, rc = gan_preset('stable', ngf=8, ndf=8, epochs=1)
    assert (cfg.temperature, rc.train_on) == (0.2, 'class')
    gan = ConditionalGAN(cfg, ds.n_classes, ds.n_classes)
    assert train_gan(gan, ds, rc, progress=False).finished
    soft = torch.tensor([[0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]]); z = torch.randn(2, cfg.z_dim, generator=torch.Generator().manual_seed(0))
    sharp = gan.generate(z, soft)
    gan.cfg = replace(cfg, temperature=1.0)
    assert not torch.allclose(sharp, gan.generate(z, soft), atol=1e-4)
    onehot = torch.eye(4)[[0, 3]]; plain = gan.generate(z, onehot)
    gan.cfg = cfg
    assert torch.allclose(gan.generate(z, onehot), plain, atol=1e-5)
    gan.cfg = replace(cfg, temperature=1e-3)      # the limit: the argmax class's code, no underflow
    assert torch.allclose(gan.generate(z, soft), gan.generate(z, onehot), atol=1e-5)
    with pytest.raises(ValueError, match='temperature=0: expected > 0'): ConditionalGAN(replace(cfg, temperature=0), 4, 4)

