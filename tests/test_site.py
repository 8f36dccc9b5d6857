"""mindvec.site: one Site type, one printed form, and the older printed forms still read."""

from __future__ import annotations

import pytest

from mindvec.errors import InvalidError, UsageError
from mindvec.site import Site, as_site, parse


def test_one_printed_form_and_round_trip() -> None:
    site = Site("encoder", 2, "mlp_out")
    assert str(site) == "encoder.2.mlp_out"
    assert parse(str(site)) == site
    assert Site.from_dict(site.to_dict()) == site
    assert list(site.to_dict()) == sorted(site.to_dict())  # canonical key order


@pytest.mark.parametrize("text", ["decoder.3.resid_post", "decoder[3].resid_post", "decoder:3:resid_post"])
def test_published_forms_all_parse(text: str) -> None:
    assert parse(text) == Site("decoder", 3, "resid_post")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("decoder.3", "argument"),
        ("decoder.-1.resid_post", "argument"),
        ("decoder.3.resid_post\n", "argument"),  # fullmatch: no trailing newline sneaks through
        ("decoder.3.residual", "site"),
        ("middle.3.resid_post", "site"),
        ("decoder.2.resid_pre", "site"),  # the input of block 2 is resid_post of layer 1
        (("decoder", True, "resid_post"), "site"),
        (("decoder", 1), "argument"),
        ({"layer": 1.0, "point": "mlp_out"}, "site"),
    ],
)
def test_bad_sites_get_typed_errors(value: object, code: str) -> None:
    with pytest.raises((InvalidError, UsageError)) as err:
        as_site(value)  # type: ignore[arg-type]
    assert err.value.code == code


def test_as_site_accepts_every_form() -> None:
    want = Site("decoder", 0, "resid_pre")
    assert as_site(want) is want
    assert as_site({"layer": 0, "point": "resid_pre"}) == want  # stack defaults to decoder
    assert as_site(("decoder", 0, "resid_pre")) == want
    assert as_site("decoder:0:resid_pre") == want
