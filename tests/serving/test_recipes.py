"""Every registered recipe exports and verifies in a TensorFlow-only process.

An untrained model built on the recipe's embedded default data is enough: the export must
carry the recipe's pre- and post-processing and match the Keras model (atol 1e-4) whatever the
weights.  A recipe not registered yet (they land in parallel) is skipped.  The signature keys
and dtypes are the ones the export issue fixes for each recipe.
"""

from __future__ import annotations

import pytest

CONTRACTS = {
    "weather": ({"history": "float32"}, {"forecast": "float32"}),
    "finance": ({"prices": "float32"}, {"log_return": "float32", "volatility": "float32"}),
    "fraud": ({"transactions": "float32"}, {"fraud_probability": "float32"}),
    "translation": ({"text": "string"}, {"translation": "string"}),
    "speech": ({"audio": "float32"}, {"transcript": "string"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_recipe_exports_and_verifies(name, tmp_path):
    from lstm_zoo.errors import UnknownNameError
    from lstm_zoo.registry import get_recipe
    from lstm_zoo.serving.savedmodel import export
    from lstm_zoo.serving.verify import cudnn_ops, graph_op_types

    try:
        recipe = get_recipe(name)
    except UnknownNameError:
        pytest.skip(f"recipe {name!r} is not registered (yet)")
    data = recipe.load(None)
    model = recipe.build_model(data)
    result = export(model, tmp_path, recipe=recipe, data=data, verify=True)

    assert result.path == tmp_path / name / "1"
    signature = result.manifest["signature"]
    inputs, outputs = CONTRACTS[name]
    assert {k: v["dtype"] for k, v in signature["inputs"].items()} == inputs
    assert {k: v["dtype"] for k, v in signature["outputs"].items()} == outputs
    assert all(v["shape"][0] is None for v in [*signature["inputs"].values(),
                                               *signature["outputs"].values()])
    assert result.verification["tensorflow_only_process"] is True
    assert result.verification["warmup_requests_replayed"] >= 1
    assert result.manifest["sample_inputs"] == "recipe data"
    ops, xla = graph_op_types(result.path)
    assert cudnn_ops(ops) == [] and not xla
