"""numpydoc validation of every public name, and its place in the API reference.

The public names are ``DALLMiClassifier`` and the ``__all__`` of the
modules ``metrics``, ``datasets``, ``loss``, ``sampling`` and
``persistence``, with the public methods that their classes define
themselves (inherited ones, such as scikit-learn's ``get_params``, are
their authors' business).

Checks that we do not require, and why:

- ``ES01`` (extended summary): a one-line summary is enough for a small
  function; the class docstrings carry the narrative.
- ``SA01`` (See Also): cross-references are added where they help, not
  everywhere.
- ``EX01`` (Examples): the runnable examples are the sphinx-gallery
  scripts in ``examples/``; an example of a fit in every docstring would
  need a trained encoder.
- ``RT02`` (first line of Returns holds only the type): we name the
  returned value (``self : DALLMiClassifier``), as scikit-learn does.

Module-level data (constants, the scorer object) carry no docstring of
their own for numpydoc to check; they only have to appear in the API
reference, like every other public name.
"""

import ast
import importlib
import inspect
import re
from pathlib import Path

import numpydoc.validate as numpydoc_validate
import pytest

IGNORED = {"ES01", "SA01", "EX01", "RT02"}
MODULES = ("metrics", "datasets", "loss", "sampling", "persistence", "probe", "priors")
API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.rst"
QUICKSTART = API_PAGE.parent / "quickstart.rst"


def _own_methods(cls, prefix):
    names = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod, property)):
            names.append(f"{prefix}.{name}")
    return names


def public_names():
    """(qualified name, is_documentable) for every public name."""
    import sklearn_dallmi

    names = [("sklearn_dallmi.DALLMiClassifier", True)]
    names += [(n, True) for n in _own_methods(sklearn_dallmi.DALLMiClassifier,
                                              "sklearn_dallmi.DALLMiClassifier")]
    for module_name in MODULES:
        module = importlib.import_module(f"sklearn_dallmi.{module_name}")
        for name in module.__all__:
            qualified = f"sklearn_dallmi.{module_name}.{name}"
            value = getattr(module, name)
            if inspect.isclass(value):
                names.append((qualified, True))
                names += [(n, True) for n in _own_methods(value, qualified)]
            else:
                names.append((qualified, inspect.isfunction(value)))
    return names


CALLABLES = [name for name, documentable in public_names() if documentable]


@pytest.mark.parametrize("name", CALLABLES)
def test_docstring(name):
    result = numpydoc_validate.validate(name)
    errors = [(code, message) for code, message in result["errors"] if code not in IGNORED]
    assert not errors, f"{name}:\n" + "\n".join(f"  {c}: {m}" for c, m in errors)


def _listed_in_api_page():
    """Qualified names in the autosummary lists of ``docs/api.rst``."""
    listed = set()
    module = ""
    for line in API_PAGE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\.\. currentmodule:: ([\w.]+)", line.strip())
        if match:
            module = match.group(1)
        elif re.fullmatch(r" {3,}[A-Za-z_]\w*", line):
            listed.add(f"{module}.{line.strip()}")
    return listed


def test_api_reference_lists_every_public_name():
    # Methods appear on their class's page; the names themselves must be listed.
    names = ["sklearn_dallmi.DALLMiClassifier"] + [
        name for name, _ in public_names() if name.count(".") == 2
        and name.split(".")[1] in MODULES
    ]
    missing = sorted(set(names) - _listed_in_api_page())
    assert not missing, f"not in docs/api.rst: {missing}"


def test_the_quickstart_shows_the_signature_defaults():
    from sklearn_dallmi import DALLMiClassifier

    text = QUICKSTART.read_text()
    block = text[text.index("   DALLMiClassifier(\n"):]
    block = block[:block.index("\n   )\n")]
    shown = dict(re.findall(r"^ {7}(\w+)=(.+?),\s*(?:#.*)?$", block, flags=re.M))
    defaults = {name: p.default for name, p in
                inspect.signature(DALLMiClassifier).parameters.items()}
    assert len(shown) > 10, "the quickstart's parameter block was not found"
    wrong = {name: (value, defaults.get(name, "not a parameter"))
             for name, value in shown.items()
             if name not in defaults or ast.literal_eval(value) != defaults[name]}
    assert not wrong, f"docs/quickstart.rst shows (shown, default): {wrong}"
