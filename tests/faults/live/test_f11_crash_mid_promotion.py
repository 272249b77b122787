"""F11: the worker dies (SIGKILL, at a fault point of core/faults.py) in the middle of a
promotion or a rollback, after the alias row moved and before the commit. Production still has
exactly one holder, the one it had; the retry moves it."""

import pytest

from .conftest import PASSWORD, RUNS, create_model, timed

pytestmark = pytest.mark.faults_live
POINTS = ("alias-moved", "alias-recorded")


def signed(meaning: str) -> dict:
    """New models' policies require signatures: the caller's password and a meaning."""
    return {"password": PASSWORD, "meaning": meaning}


def approved_versions(registry, model: str, count: int) -> None:
    status, body = registry.request(
        "PUT", f"/api/v1/models/{model}/sharing/users/reviewer", {"roles": ["review"]}
    )
    assert status == 200, body
    for _ in range(count):
        metadata = {
            "description": "fault run",
            "metrics": {"accuracy": 0.9},
            "datasets": [{"name": f"{model}-train", "role": "train"}],
        }  # what the default review gates ask for, with a file
        status, version = registry.request("POST", f"/api/v1/models/{model}/versions", metadata)
        assert status == 201, version
        at = f"/api/v1/models/{model}/versions/{version['number']}"
        status, body = registry.request("PUT", f"{at}/files/model.bin", b"weights")
        assert status == 201, body
        status, body = registry.request("POST", f"{at}/submit")
        assert status == 200, body
        seen = {"content_digest": body["content_digest"]} | signed("Approved for production use")
        status, body = registry.request(
            "POST", f"{at}/approve", seen, token=registry.reviewer_token
        )
        assert status == 200, body


def promote(registry, model: str, number: int):
    return registry.request(
        "PUT",
        f"/api/v1/models/{model}/aliases/production",
        {"version": number} | signed("Released for use under this alias"),
    )


def rollback(registry, model: str):
    return registry.request(
        "POST",
        f"/api/v1/models/{model}/aliases/production/rollback",
        {"reason": "fault run"} | signed("Rolled back to the previous version"),
    )


def production(registry, model: str) -> list[int]:
    """The version numbers production points at (a list: there must be exactly one)."""
    return [
        number
        for (number,) in registry.query(
            "SELECT v.number FROM approvals_alias a"
            " JOIN models_app_modelversion v ON v.id = a.version_id"
            " JOIN models_app_registeredmodel m ON m.id = a.model_id"
            " WHERE m.name = %s AND a.name = 'production'",
            (model,),
        )
    ]


@pytest.mark.parametrize("run", range(RUNS))
def test_a_crash_mid_promotion_or_rollback_leaves_exactly_one_production(registry, run):
    operation = ("promote", "rollback")[run // 2 % 2]
    with timed("F11 crash in the middle of a promotion or rollback"):
        model = create_model(registry, "f11")
        approved_versions(registry, model, 3)
        for number in (1, 2):
            status, body = promote(registry, model, number)
            assert status == 200, body

        registry.arm(POINTS[run % 2])
        with pytest.raises(ConnectionError):
            promote(registry, model, 3) if operation == "promote" else rollback(registry, model)
        registry.wait_for_workers()
        assert production(registry, model) == [2]

        status, body = (
            promote(registry, model, 3) if operation == "promote" else rollback(registry, model)
        )
        assert status == 200, body
        assert production(registry, model) == [3 if operation == "promote" else 1]
        registry.check_invariants()
