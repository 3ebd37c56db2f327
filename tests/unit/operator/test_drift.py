"""What counts as drift: a field the operator sets that differs; never a field it does not set."""

from __future__ import annotations

from venue_operator.reconcile import drifted, invalid_spec, submitter_replicas


def test_server_defaults_are_not_drift():
    want = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a"}]}}}}
    live = {"spec": {"replicas": 2, "progressDeadlineSeconds": 600,
                     "template": {"spec": {"containers": [{"name": "a", "imagePullPolicy": "X"}],
                                           "dnsPolicy": "ClusterFirst"}}},
            "status": {"replicas": 2}}
    assert not drifted(want, live)


def test_a_changed_or_missing_field_is_drift():
    want = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "v1"}]}}}}
    assert drifted(want, {"spec": {"replicas": 5, "template": want["spec"]["template"]}})
    assert drifted(want, {"spec": {"replicas": 2,
                                   "template": {"spec": {"containers": [{"image": "v2"}]}}}})
    assert drifted(want, {"spec": {"replicas": 2, "template": {"spec": {"containers": []}}}})
    assert drifted(want, {})


def test_submitters_keep_the_last_decision_within_bounds(venue_with):
    venue = venue_with({"submitters": {"min": 2, "max": 6}}, status={"submitters": {"desired": 5}})
    assert submitter_replicas(venue, None) == 5  # from status, after an operator restart
    assert submitter_replicas(venue, 3) == 3  # the autoscaler's latest word wins
    assert submitter_replicas(venue, 9) == 6
    assert submitter_replicas(venue_with({"submitters": {"min": 2, "max": 6}}), None) == 2


def test_a_band_off_the_tick_grid_is_caught_before_anything_is_built(venue_with):
    venue = venue_with()
    venue["spec"]["instruments"][0]["minPrice"] = "0.015"
    problem = invalid_spec(venue)
    assert problem and "min_price" in problem
    assert invalid_spec(venue_with()) is None


def test_a_trusted_proxy_that_only_looks_like_an_address_is_caught(venue_with):
    # The CRD's pattern lets it through (hex digits, dots and colons).
    venue = venue_with({"gateway.connections": {"trustedProxies": ["10.0.0.0/8", "1.2.3"]}})
    assert invalid_spec(venue) == ("gateway.connections.trustedProxies: '1.2.3' is not an "
                                   "IP address or network")
    assert invalid_spec(venue_with({"gateway.connections": {
        "trustedProxies": ["10.0.0.0/8", "fd00::/8", "192.0.2.7"]}})) is None
