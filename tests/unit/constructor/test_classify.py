"""The offline request classifier on a labelled set it was not built from, and complexity."""

from __future__ import annotations

from taskloom.constructor.domain.classify import (
    TRAINING_CORPUS,
    classify_request,
    classify_texts,
    complexity_score,
)
from taskloom.contracts.enums import RequestType
from taskloom.contracts.requests import ComplexRequest

F, D, S, R, B = (
    RequestType.FEATURE_DEVELOPMENT,
    RequestType.DOCUMENTATION_UPDATE,
    RequestType.SYSTEM_ANALYSIS,
    RequestType.RELEASE_MANAGEMENT,
    RequestType.BUG_INVESTIGATION,
)

LABELLED: list[tuple[list[str], RequestType]] = [
    (["Add a wishlist feature to the shop", "Implement email notifications for orders"], F),
    (["Implement search suggestions as the user types"], F),
    (["Add an option to export invoices as PDF"], F),
    (["Support multiple currencies in the cart"], F),
    (["Create a REST endpoint for product reviews", "Add caching of review counts"], F),
    (["Build a new admin page to manage users"], F),
    (["Implement retries with backoff for the HTTP client"], F),
    (["Add a configuration flag to disable telemetry"], F),
    (["Update the docs for the configuration file format"], D),
    (["Write docstrings for the inventory module"], D),
    (["Document the REST API with examples"], D),
    (["Fix broken links in the README and the user guide"], D),
    (["Add a getting started tutorial to the documentation"], D),
    (["Improve the API reference pages"], D),
    (["Rewrite the installation section of the README"], D),
    (["Analyze the code quality of the billing module"], S),
    (["Check the test coverage of the project", "Assess import performance"], S),
    (["Audit the codebase for layering violations"], S),
    (["Evaluate the maintainability of the services"], S),
    (["Find slow tests and profile the import time"], S),
    (["Scan the repository for leaked credentials and secrets"], S),
    (["Review the architecture and report technical debt"], S),
    (["Prepare the 3.1 release"], R),
    (["Write release notes and the changelog for version 2.4"], R),
    (["Publish the new version to PyPI after the release checks"], R),
    (["Check that nothing blocks shipping the release to production"], R),
    (["Bump the package version and tag the release"], R),
    (["Verify there are no breaking schema changes before the release"], R),
    (["Investigate why the order total is negative"], B),
    (["Users report a crash when the cart is empty"], B),
    (["Find the root cause of the intermittent 500 error"], B),
    (["Reproduce the failing inventory test and fix it"], B),
    (["The discount is applied twice: debug it"], B),
    (["Exception raised when parsing a malformed order"], B),
    (["Diagnose why login times out after the upgrade"], B),
]


def test_labelled_set_is_not_the_training_corpus() -> None:
    corpus = {t for texts in TRAINING_CORPUS.values() for t in texts}
    assert not corpus & {t for texts, _ in LABELLED for t in texts}


def test_classifies_at_least_90_percent_of_the_labelled_set() -> None:
    wrong = [
        (texts, label.value, got.request_type.value)
        for texts, label in LABELLED
        if (got := classify_texts(texts)).request_type != label
    ]
    accuracy = 1 - len(wrong) / len(LABELLED)
    assert accuracy >= 0.9, f"accuracy {accuracy:.0%}; misclassified: {wrong}"


def test_classification_is_deterministic_and_scored() -> None:
    first = classify_texts(["Check test coverage", "Assess performance"])
    again = classify_texts(["Check test coverage", "Assess performance"])
    assert first == again
    assert first.request_type == S
    assert 0 < first.confidence <= 1
    assert set(first.scores) == {t.value for t in RequestType}


def test_auto_and_missing_type_are_classified_given_type_is_kept() -> None:
    auto = ComplexRequest.model_validate(
        {"request_type": "auto", "requirements": {"functional": ["Write the changelog for 2.0"]}}
    )
    assert auto.request_type is None
    assert classify_request(auto).request_type == R
    assert classify_request(auto).source == "classified"
    given = ComplexRequest.model_validate(
        {"request_type": "bug_investigation", "requirements": {"functional": ["Write the changelog"]}}
    )
    assert classify_request(given).request_type == B
    assert classify_request(given).source == "given"


def test_unrecognisable_text_falls_back_to_feature_development() -> None:
    assert classify_texts(["zzz qqq"]).request_type == F


def test_complexity_given_or_grows_with_the_requirements() -> None:
    given = ComplexRequest.model_validate({"complexity_level": 9, "requirements": {"functional": ["x"]}})
    assert complexity_score(given) == 9
    small = ComplexRequest.model_validate({"requirements": {"functional": ["Add a button"]}})
    big = ComplexRequest.model_validate(
        {
            "requirements": {
                "functional": [f"Add distributed caching layer {i}" for i in range(6)],
                "non_functional": ["Response time < 100ms", "Encryption of data at rest"],
                "constraints": ["Backward compatibility with v1"],
            }
        }
    )
    assert 1 <= complexity_score(small) < complexity_score(big) <= 10
    huge = ComplexRequest.model_validate({"requirements": {"functional": [f"r{i}" for i in range(50)]}})
    assert complexity_score(huge) == 10
