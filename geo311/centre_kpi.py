"""The 311 centre's own figures: contacts by channel, per agent, first-contact resolution.

Cities measure their call-takers this way (ICMA's study of 311 centres): how
residents reach the centre, how many contacts are questions answered
without a ticket, how many are resolved at the first contact (not transferred), and how
long a request waits for its first staff action.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo311.model import CHANNELS

#: A contact is resolved at first contact unless the agent had to pass it on.
NOT_RESOLVED = ("transferred",)
#: Audit actions that are staff working a request (not its creation or a merge by rule).
FIRST_ACTIONS = ("status", "note_added", "forwarded", "assigned", "sla_paused")


def channel_table(contacts: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """Per channel: desk contacts, of which questions only, and requests received.

    ``contacts`` has ``channel, kind`` (one row per desk contact); ``requests`` has
    ``channel, requests`` (requests received per ``source``, every channel). A last row
    ``all`` holds the totals.
    """
    c = contacts.assign(info=contacts["kind"].eq("info").astype(int))
    desk = c.groupby("channel").agg(contacts=("kind", "size"), info_only=("info", "sum"))
    received = requests.set_index("channel")["requests"] if len(requests) else pd.Series(
        dtype=int)
    order = list(CHANNELS) + sorted(set(received.index) - set(CHANNELS))
    table = pd.DataFrame(index=pd.Index(order, name="channel"))
    table = table.join(desk).join(received.rename("requests")).fillna(0).astype(int)
    table = table[(table != 0).any(axis=1)].reset_index()
    table["info_share"] = _share(table["info_only"], table["contacts"])
    total = pd.DataFrame([{"channel": "all", "contacts": table["contacts"].sum(),
                           "info_only": table["info_only"].sum(),
                           "requests": table["requests"].sum()}])
    total["info_share"] = _share(total["info_only"], total["contacts"])
    return pd.concat([table, total], ignore_index=True)[
        ["channel", "contacts", "info_only", "info_share", "requests"]]


def agent_table(contacts: pd.DataFrame) -> pd.DataFrame:
    """Per agent: contacts, questions answered, requests taken, first-contact resolution."""
    c = contacts.assign(info=contacts["kind"].eq("info").astype(int),
                        request=contacts["kind"].eq("request").astype(int),
                        resolved=(~contacts["outcome"].isin(NOT_RESOLVED)).astype(int))
    table = c.groupby("agent", sort=True).agg(
        contacts=("kind", "size"), info_only=("info", "sum"), requests=("request", "sum"),
        resolved=("resolved", "sum")).reset_index()
    table["first_contact_resolution"] = _share(table["resolved"], table["contacts"])
    return table.sort_values(["contacts", "agent"], ascending=[False, True], kind="stable"
                             ).reset_index(drop=True)


def centre_summary(contacts: pd.DataFrame, first_actions: pd.DataFrame,
                   requests: int) -> dict[str, float]:
    """Totals for the period: contacts, question share, resolution, time to first action.

    ``first_actions`` has ``requested`` and ``first_action`` per request staff acted on;
    ``requests`` is how many came in.
    """
    n = len(contacts)
    waited = (first_actions["first_action"] - first_actions["requested"]).dt.total_seconds()
    acted = waited.dropna() / 3600
    return {
        "contacts": n,
        "info_share": float(contacts["kind"].eq("info").mean()) if n else np.nan,
        "first_contact_resolution": (float((~contacts["outcome"].isin(NOT_RESOLVED)).mean())
                                     if n else np.nan),
        "requests": requests,
        "acted_on": len(acted),
        "median_hours_to_first_action": float(acted.median()) if len(acted) else np.nan,
        "p90_hours_to_first_action": float(acted.quantile(0.9)) if len(acted) else np.nan,
    }


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    return (part / whole.where(whole > 0)).astype(float)
