"""The pages without a live socket (history, an incident) name things with the
same labels as the board: the vocabulary is one GET away, behind the login."""

from __future__ import annotations

from contract import vocabulary
from test_dashboard_desk import desk, log_in  # noqa: F401  (the fixture)


async def test_the_vocabulary_is_served_to_a_logged_in_page_only(desk):  # noqa: F811
    refused = await desk.get("/api/vocabulary")
    assert refused.status == 401 and (await refused.json())["error"] == "log in first"
    await log_in(desk)
    words = await (await desk.get("/api/vocabulary")).json()
    assert words == vocabulary.for_the_page()
    assert words["type_labels"]["man_down"] == "MAN DOWN"
    assert words["resolutions"]["false_alarm"] == "False alarm"
