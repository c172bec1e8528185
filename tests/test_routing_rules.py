"""The [routing] table: validation with clear errors, rule matching and escalation tiers."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from contract.vocabulary import PRIORITY_OF_TYPE
from gateway.routing import channels_for, parse_routing_config

DOCS = Path(__file__).resolve().parent.parent / "docs" / "routing.md"
HOOK = {"type": "webhook", "url": "https://pager.example.org/hook", "secret": "0123456789abcdef"}
MAIL = {"type": "email", "host": "smtp.example.org", "from": "gw@example.org", "to": ["duty@example.org"]}


def incident(**fields) -> dict:
    base = {"id": 1, "site": "hq", "device": "dev-001", "type": "panic", "state": "open"}
    return base | fields


def documented_example() -> dict:
    text = DOCS.read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    return tomllib.loads(block)["routing"]


@pytest.fixture
def config():
    return parse_routing_config(
        {
            "channels": {"desk-hook": HOOK, "depot-hook": HOOK, "duty-mail": MAIL, "manager-hook": HOOK},
            "rules": [
                {"types": ["panic", "man_down", "overdue"], "channels": ["desk-hook"]},
                {"sites": ["depot"], "channels": ["depot-hook"]},
                {"priorities": ["warning"], "events": ["raised"], "channels": ["duty-mail"]},
            ],
            "escalation": {"tiers": [["duty-mail"], ["manager-hook"]], "priorities": ["critical"]},
        }
    )


def test_an_empty_routing_table_means_dashboard_only():
    config = parse_routing_config({})
    assert config.channels == {} and config.rules == ()
    assert channels_for(config, incident(), "raised") == ()
    assert channels_for(config, incident(), "escalated", tier=3) == ()


def test_the_example_in_the_docs_is_a_valid_config():
    config = parse_routing_config(documented_example())
    assert set(config.channels) == {"ops-hook", "duty-mail", "manager-hook"}
    assert config.channels["duty-mail"].port == 587  # default for starttls
    assert config.channels["ops-hook"].max_attempts == 5


def test_priority_comes_from_the_alarm_type():
    assert PRIORITY_OF_TYPE == {"panic": "critical", "man_down": "critical", "overdue": "critical", "technical": "warning"}


def test_rules_match_by_site_type_and_priority(config):
    assert channels_for(config, incident(), "raised") == ("desk-hook",)
    assert channels_for(config, incident(site="depot", type="man_down"), "raised") == ("desk-hook", "depot-hook")
    assert channels_for(config, incident(type="technical"), "raised") == ("duty-mail",)
    assert channels_for(config, incident(site="depot", type="technical"), "raised") == ("depot-hook", "duty-mail")


def test_a_rule_limited_to_raised_stays_quiet_on_later_events(config):
    technical = incident(type="technical")
    assert channels_for(config, technical, "acknowledged") == ()
    assert channels_for(config, incident(), "resolved") == ("desk-hook",)


def test_an_incident_carrying_its_own_priority_keeps_it(config):
    assert channels_for(config, incident(type="panic", priority="warning"), "raised") == ("desk-hook", "duty-mail")


def test_escalation_tiers_pick_the_right_channels(config):
    panic = incident()
    assert channels_for(config, panic, "escalated", tier=1) == ("desk-hook", "duty-mail")
    assert channels_for(config, panic, "escalated", tier=2) == ("desk-hook", "manager-hook")
    # Past the last tier the last tier keeps being paged until someone acknowledges.
    assert channels_for(config, panic, "escalated", tier=5) == ("desk-hook", "manager-hook")


def test_everyone_paged_hears_the_acknowledgement(config):
    assert channels_for(config, incident(), "acknowledged", tier=2) == ("desk-hook", "duty-mail", "manager-hook")
    assert channels_for(config, incident(), "resolved", tier=1) == ("desk-hook", "duty-mail")
    assert channels_for(config, incident(), "acknowledged") == ("desk-hook",)


def test_escalation_only_for_the_configured_priorities(config):
    technical = incident(type="technical")
    assert channels_for(config, technical, "escalated", tier=2) == ()


def test_an_unknown_event_is_refused(config):
    with pytest.raises(ValueError, match="unknown routing event 'opened'"):
        channels_for(config, incident(), "opened")


BAD_CONFIGS = [
    ({"chanels": {}}, r"\[routing\] has unknown key\(s\) chanels"),
    ({"channels": {"ops-hook": dict(HOOK, url="ftp://x")}},
     r"\[routing.channels.ops-hook\] url must be http\(s\)://host/\.\.\., got 'ftp://x'"),
    ({"channels": {"ops-hook": dict(HOOK, secret="short")}},
     r"\[routing.channels.ops-hook\] secret .* at least 16 characters"),
    ({"channels": {"ops-hook": dict(HOOK, retries=3)}}, r"\[routing.channels.ops-hook\] has unknown key\(s\) retries"),
    ({"channels": {"ops-hook": dict(HOOK, max_attempts=0)}},
     r"\[routing.channels.ops-hook\] max_attempts must be an integer in 1\.\.100, got 0"),
    ({"channels": {"ops-hook": dict(HOOK, timeout_s="5")}}, r"timeout_s must be a number >= 0.1, got '5'"),
    ({"channels": {"ops-hook": dict(HOOK, type="sms")}}, r"\[routing.channels.ops-hook\] type must be one of webhook, email"),
    ({"channels": {"dashboard": HOOK}}, r"\[routing.channels.dashboard\] .* always on"),
    ({"channels": {"Ops Hook": HOOK}}, r"name must be lower-case"),
    ({"channels": {"duty-mail": dict(MAIL, to="duty@example.org")}}, r"\[routing.channels.duty-mail\] to must be a non-empty list"),
    ({"channels": {"duty-mail": dict(MAIL, to=["not-an-address"])}}, r"to\[0\] must be one e-mail address"),
    ({"channels": {"duty-mail": dict(MAIL, tls="ssl")}}, r"tls must be one of starttls, implicit, none, got 'ssl'"),
    ({"channels": {"duty-mail": dict(MAIL, username="u")}}, r"username and password go together"),
    ({"rules": [{"channels": ["ops-hook"]}]}, r"\[\[routing.rules\]\] #1 channels: unknown channel 'ops-hook' \(channels: none defined\)"),
    ({"channels": {"h": HOOK}, "rules": [{"types": ["fire"], "channels": ["h"]}]},
     r"#1 types has unknown value\(s\) fire; choose from panic, man_down, overdue, technical"),
    ({"channels": {"h": HOOK}, "rules": [{"sites": "hq", "channels": ["h"]}]}, r"#1 sites must be \"\*\" or a non-empty list"),
    ({"channels": {"h": HOOK}, "rules": [{"types": ["panic"]}]}, r"#1 needs channels"),
    ({"channels": {"h": HOOK}, "rules": [{"sites": ["HQ"], "channels": ["h"]}]}, r"#1 sites: 'HQ' can never match"),
    ({"channels": {"h": HOOK}, "rules": [{"channels": ["dashboard"]}]}, r"'dashboard' is always on"),
    ({"channels": {"h": HOOK}, "rules": [{"channels": ["h"], "site": ["hq"]}]}, r"#1 has unknown key\(s\) site"),
    ({"channels": {"h": HOOK}, "escalation": {"tiers": [["h"], ["boss"]]}},
     r"\[routing.escalation\] tiers\[1\]: unknown channel 'boss'"),
    ({"channels": {"h": HOOK}, "escalation": {"tiers": ["h"]}}, r"tiers\[0\] must be a non-empty list of channel names"),
    ({"channels": {"h": HOOK}, "escalation": {"timeout_s": 60}}, r"\[routing.escalation\] has unknown key\(s\) timeout_s"),
]


@pytest.mark.parametrize("table, message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_a_bad_config_is_refused_with_a_message_naming_the_key(table, message):
    with pytest.raises(ValueError, match=message):
        parse_routing_config(table)


def test_secrets_stay_out_of_logged_config():
    config = parse_routing_config({"channels": {"h": HOOK, "m": dict(MAIL, username="u", password="pw-123")}})
    assert "0123456789abcdef" not in repr(config)
    assert "pw-123" not in repr(config)
