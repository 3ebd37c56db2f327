"""The venue's ConfigMap (venue.json) and its generated Secrets."""

from __future__ import annotations

import json

from venue.contract.config import VenueConfig

from venue_operator.render.configmap import config_map
from venue_operator.render.secrets import generated_secrets
from venue_operator.render.service_accounts import service_accounts


def test_config_map_holds_the_venue_config_document(venue):
    data = config_map(venue)["data"]["venue.json"]
    config = VenueConfig.model_validate(json.loads(data))
    assert config.name == "demo"
    assert config.shards == 4 and config.partitions == 1
    btc = config.by_symbol["BTC-USD"]
    assert (btc.id, btc.tick_size, btc.lot_size, btc.max_quantity) == (1, "0.01", "0.0001", "1000")


def test_generated_secrets_hold_passwords_urls_and_the_bootstrap_key(venue):
    passwords = iter(["p1", "p2"])
    made = {s["metadata"]["name"]: s["stringData"]
            for s in generated_secrets(venue, password=lambda: next(passwords),
                                       api_key=lambda: "tv_key")}
    assert made["demo-redis"] == {"password": "p1",
                                  "url": "redis://:p1@demo-redis.markets.svc:6379/0"}
    assert made["demo-postgres"] == {
        "password": "p2", "url": "postgresql://venue:p2@demo-postgres.markets.svc:5432/venue"}
    assert made["demo-api-key"] == {"key": "tv_key"}


def test_real_passwords_are_long_and_different(venue):
    made = generated_secrets(venue)
    redis, postgres = made[0]["stringData"]["password"], made[1]["stringData"]["password"]
    assert len(redis) >= 32 and redis != postgres
    assert made[2]["stringData"]["key"].startswith("tv_")


def test_external_stores_get_no_generated_password(venue_with):
    venue = venue_with({"redis": {"mode": "External", "external": {"urlSecret": {"name": "q"}}}})
    assert [s["metadata"]["name"] for s in generated_secrets(venue)] == ["demo-postgres",
                                                                          "demo-api-key"]


def test_no_part_gets_an_api_token(venue):
    accounts = service_accounts(venue)
    assert len(accounts) == 6
    assert all(a["automountServiceAccountToken"] is False for a in accounts)
