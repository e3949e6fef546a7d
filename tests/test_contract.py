"Every trainer keeps the one training contract of brain2image.fitting (see nbs/00b_fitting.ipynb)."
import inspect
import pytest
from brain2image.fitting import Recipe, TrainResult
from brain2image.training import train_encoder, TrainConfig
from brain2image.vae import train_vae, VAEConfig
from brain2image.gan import train_gan, GANRecipe
from brain2image.image_classifier import train_image_classifier, ImageClassifierRecipe
from brain2image.diffusion import train_diffusion, DiffusionRecipe

TRAINERS = [(train_encoder, TrainConfig), (train_vae, VAEConfig), (train_gan, GANRecipe), (train_image_classifier, ImageClassifierRecipe),
            (train_diffusion, DiffusionRecipe)]
SHARED = ['out', 'resume', 'device', 'progress', 'max_epochs_this_call', 'time_budget_s']

@pytest.mark.parametrize('trainer,recipe', TRAINERS, ids=lambda x: getattr(x, '__name__', ''))
def test_one_signature(trainer, recipe):
    ps = inspect.signature(trainer).parameters
    names = list(ps)
    assert names[:3] == [names[0], 'ds', 'recipe'], names                      # (model, ds, recipe, ...)
    assert ps['recipe'].default is None and ps['recipe'].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
    for k in SHARED:                                                           # the same keyword-only options everywhere
        assert k in ps and ps[k].kind == inspect.Parameter.KEYWORD_ONLY, (trainer.__name__, k)
    assert (ps['out'].default, ps['resume'].default, ps['device'].default, ps['progress'].default) == (None, True, None, True)
    assert ps['max_epochs_this_call'].default is None and ps['time_budget_s'].default is None
    assert inspect.signature(trainer).return_annotation in (TrainResult, 'TrainResult')
    assert issubclass(recipe, Recipe)
    with pytest.raises(TypeError, match=f'recipe must be a {recipe.__name__}'):   # a recipe of another trainer is refused
        other = next(r for t, r in TRAINERS if r is not recipe)
        trainer(None, None, other())
