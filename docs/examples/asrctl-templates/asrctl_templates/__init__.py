"""asrctl-templates: a trainer and the backend that runs what it trains, written with asrctl's public API only.

The model is a folder of templates: the spectral shape of each training utterance, with its text;
the backend answers with the text of the nearest template. Far too simple for speech in the
wild, it has every part a trainer needs: declared settings, training data read through the core's
reader, a progress bar, validation WER, atomic output and the one training summary.
"""

from asrctl import BackendSpec, Setting, TrainerSpec, hookimpl


def load(model, **options):
    from asrctl_templates import templates  # numpy and asrctl.api load when the backend is used

    return templates.Recogniser(model)


def train(recipe, *, resume, quiet):
    from asrctl_templates import templates

    return templates.train(recipe, resume=resume, quiet=quiet)


def check(recipe, *, resume):
    from asrctl_templates import templates

    templates.check(recipe, resume=resume)


@hookimpl
def register_backends(register):
    register(BackendSpec(name="templates", load=load, description="nearest-template recognition (a toy)"))


@hookimpl
def register_trainers(register):
    register(TrainerSpec(
        name="templates",
        backends=("templates",),
        train=train,
        check=check,
        description="one template per training utterance, added to those of the base model",
        settings=(Setting("training.bands", int, "frequency bands of a template [default: 32]"),),
    ))
