"""Remote geocoders (Nominatim through geopy, the US Census geocoder): optional, off by default.

The offline geocoder is the default and never needs the network. A city that wants a
second opinion for the addresses its own layers cannot place sets
``GEO311_REMOTE_GEOCODER`` to ``nominatim`` or ``census`` and installs the optional
packages (``pip install 'geo311[remote]'``: geopy, censusgeocode). A remote answer gets
the match type ``remote`` and a score of 0.5, and is refused when it falls outside the
extent of the city's own references.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from geo311.config import REMOTE_GEOCODERS
from geo311.errors import ConfigError
from geo311.geocoding.cascade import Geocode

LOGGER = logging.getLogger(__name__)

REMOTE_KINDS = REMOTE_GEOCODERS
#: How far (degrees) outside the references' extent a remote answer may fall.
EXTENT_MARGIN_DEG = 0.02

Ask = Callable[[str], "tuple[float, float, str] | None"]


class RemoteGeocoder:
    """A web geocoder behind the offline one, asked only when that finds nothing.

    Parameters
    ----------
    kind : str
        ``"nominatim"`` (OpenStreetMap, through geopy; its usage policy asks for a
        ``user_agent`` naming the deployment and at most one request a second) or
        ``"census"`` (US Census Bureau, through censusgeocode; US addresses only).
    city : str
        Appended to each query (", Springfield, MA": the city profile's name and
        state) so the service looks in the city.
    extent : tuple of float, optional
        (min lon, min lat, max lon, max lat); answers outside it are refused.
    user_agent : str
        Sent to Nominatim.
    timeout_s : float
        Per request.

    Examples
    --------
    >>> remote = RemoteGeocoder("census", city="Springfield, MA")  # doctest: +SKIP
    >>> remote.geocode("36 Court St").match  # doctest: +SKIP
    'remote'
    """

    def __init__(self, kind: str, *, city: str = "",
                 extent: tuple[float, float, float, float] | None = None,
                 user_agent: str = "geo311", timeout_s: float = 5.0) -> None:
        if kind not in REMOTE_KINDS:
            raise ConfigError(f"GEO311_REMOTE_GEOCODER was {kind!r} but is expected to be "
                              f"empty (off) or one of {REMOTE_KINDS}")
        self.kind = kind
        self.city = city
        self.extent = extent
        self._ask = (_nominatim(user_agent, timeout_s) if kind == "nominatim"
                     else _census(timeout_s))

    def geocode(self, text: str) -> Geocode:
        """Ask the service; a network failure is a reason, never an exception."""
        query = f"{text}, {self.city}" if self.city else text
        try:
            found = self._ask(query)
        except Exception as exc:  # noqa: BLE001 - the clients raise many network errors
            LOGGER.warning("remote geocoder %s failed: %s", self.kind, exc)
            return Geocode(None, None, "none", 0.0, f"the {self.kind} service failed: {exc}")
        if found is None:
            return Geocode(None, None, "none", 0.0, f"the {self.kind} service found nothing")
        lon, lat, address = found
        if self.extent is not None:
            x0, y0, x1, y1 = self.extent
            m = EXTENT_MARGIN_DEG
            if not (x0 - m <= lon <= x1 + m and y0 - m <= lat <= y1 + m):
                return Geocode(None, None, "none", 0.0,
                               f"the {self.kind} service placed it outside the city")
        LOGGER.info("remote geocoder %s placed %r at %.6f, %.6f", self.kind, text, lon, lat)
        return Geocode(lon, lat, "remote", 0.5, "", address[:200])


def _nominatim(user_agent: str, timeout_s: float) -> Ask:
    try:
        from geopy.geocoders import Nominatim
    except ImportError as exc:
        raise ConfigError("GEO311_REMOTE_GEOCODER=nominatim needs the optional 'geopy' "
                          "package: pip install 'geo311[remote]'") from exc
    service = Nominatim(user_agent=user_agent, timeout=timeout_s)

    def ask(query: str) -> tuple[float, float, str] | None:
        found = service.geocode(query, exactly_one=True)
        if found is None:
            return None
        return float(found.longitude), float(found.latitude), str(found.address)

    return ask


def _census(timeout_s: float) -> Ask:
    try:
        from censusgeocode import CensusGeocode
    except ImportError as exc:
        raise ConfigError("GEO311_REMOTE_GEOCODER=census needs the optional 'censusgeocode' "
                          "package: pip install 'geo311[remote]'") from exc
    service = CensusGeocode()

    def ask(query: str) -> tuple[float, float, str] | None:
        matches = service.onelineaddress(query, returntype="locations", timeout=timeout_s)
        if not matches:
            return None
        best = matches[0]
        return (float(best["coordinates"]["x"]), float(best["coordinates"]["y"]),
                str(best.get("matchedAddress", "")))

    return ask
