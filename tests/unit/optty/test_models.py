"""Optty's model: seeding checks that keep a world consistent, and the Authorization header."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mock_server.core.scenarios import ScenarioError, parse_scenario
from mock_server.core.world import World
from mock_server.optty import errors
from mock_server.optty.models import PROVIDER, OpttyModel
from mock_server.optty.tokens import DEFAULT_JWT_SECRET, issue_token
from mock_server.settings import Settings

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
MERCHANTS = """
  merchants:
    - {merchantId: m-1, clientId: c-1, clientSecret: s-1}
"""


@pytest.fixture
def world() -> World:
    return World(Settings(seed=1), [OpttyModel(DEFAULT_JWT_SECRET)], [], time_source=lambda: T0)


def load(world: World, optty_yaml: str) -> None:
    text = f"name: t\noptty:\n{MERCHANTS}{optty_yaml}"
    world.load(world.session("default"), parse_scenario(text, "t.yaml"))


def problems(world: World, optty_yaml: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load(world, optty_yaml)
    return list(caught.value.problems)


ORDER = ("    - {{orderReference: {ref}, merchantId: m-1, bnplProvider: ZIP_AU, amount: '50.00', "
         "currency: AUD, status: SUCCESSFUL{extra}}}\n")


def test_a_consistent_world_loads(world: World) -> None:
    load(world, "  orders:\n" + ORDER.format(ref="O-1", extra=", surcharge: '2.50'"))
    state = world.session("default").state(PROVIDER)
    assert state.orders[("m-1", "O-1")].captured == 52.5


def test_refunds_on_an_order_that_captured_nothing_are_refused_whole(world: World) -> None:
    # not SUCCESSFUL and no `captured`: nothing was captured, so nothing can have been refunded
    found = problems(world, "  orders:\n" + ORDER.format(
        ref="O-1", extra=", refunds: [{refundReference: a, amount: '30.00'}]").replace(
        "SUCCESSFUL", "DECLINED"))
    assert found == ["t.yaml:7: refunds total 30.00, more than the 0.00 captured"]
    assert world.session("default").state(PROVIDER).orders == {}


def test_a_failed_seeded_refund_does_not_count(world: World) -> None:
    # 60.00 of refunds on a 50.00 order load, because the failed 30.00 gave its money back
    load(world, "  orders:\n" + ORDER.format(
        ref="O-1", extra=", refunds: [{refundReference: a, amount: '30.00', status: FAILED}, "
                         "{refundReference: b, amount: '30.00'}]"))
    session = world.session("default")
    order = session.state(PROVIDER).orders[("m-1", "O-1")]
    view = session.ledger.view(order.account)
    assert view is not None
    assert [(r.details["refundReference"], r.amount, r.reversed) for r in view.refunds] == [
        ("a", Decimal("30.00"), True), ("b", Decimal("30.00"), False)]
    assert view.refunded == Decimal("30.00")
    assert view.remaining == Decimal("20.00")


def test_references_stay_unique_across_documents(world: World) -> None:
    load(world, "  orders:\n" + ORDER.format(
        ref="O-1", extra=", refunds: [{refundReference: a, amount: '1.00'}]"))
    found = problems(world, "  orders:\n" + ORDER.format(
        ref="O-2", extra=", refunds: [{refundReference: a, amount: '1.00'}]"))
    assert found == ["t.yaml:7: refundReference 'a' is already used by merchant 'm-1' "
                     "(order 'O-1'); it must be unique per merchant"]


def test_reseeding_an_order_frees_its_old_references(world: World) -> None:
    load(world, "  orders:\n" + ORDER.format(
        ref="O-1", extra=", refunds: [{refundReference: a, amount: '1.00'}]"))
    load(world, "  orders:\n" + ORDER.format(
        ref="O-1", extra=", refunds: [{refundReference: b, amount: '1.00'}]"))
    load(world, "  orders:\n" + ORDER.format(
        ref="O-2", extra=", refunds: [{refundReference: a, amount: '1.00'}]"))
    state = world.session("default").state(PROVIDER)
    assert state.seeded_references == {("m-1", "b"): "O-1", ("m-1", "a"): "O-2"}


def test_orders_need_a_known_merchant(world: World) -> None:
    found = problems(world, "  orders:\n" + ORDER.format(ref="O-1", extra="").replace(
        "merchantId: m-1", "merchantId: m-9"))
    assert found == ["t.yaml:7: unknown Optty merchant 'm-9'"]


def test_a_client_id_belongs_to_one_merchant(world: World) -> None:
    found = problems(world, "    - {merchantId: m-2, clientId: c-1, clientSecret: x}\n")
    assert found == ["t.yaml:6: clientId 'c-1' already belongs to merchant 'm-1'"]


def test_reseeding_a_merchant_retires_its_old_client_id(world: World) -> None:
    load(world, "")
    text = ("name: u\noptty:\n  merchants:\n"
            "    - {merchantId: m-1, clientId: c-2, clientSecret: s}\n")
    session = world.session("default")
    world.load(session, parse_scenario(text, "u.yaml"))
    assert set(session.state(PROVIDER).by_client_id) == {"c-2"}


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Token {t}", "Basic {t}", "{t}", "Bearer\u3000", "Bearerx {t}"])
def test_headers_passport_jwt_refuses(header: str | None, world: World) -> None:
    load(world, "")
    token = issue_token("m-1", secret=DEFAULT_JWT_SECRET, now=T0)
    model = OpttyModel(DEFAULT_JWT_SECRET)
    with pytest.raises(errors.Unauthorized):
        model.authenticate(world.session("default"),
                           None if header is None else header.format(t=token))


@pytest.mark.parametrize("header", ["Bearer {t}", "bearer {t}", "x Bearer {t}".split(" ", 1)[1],
                                    "Bearer\u00a0{t}", " Bearer {t} extra"])
def test_headers_passport_jwt_accepts(header: str, world: World) -> None:
    load(world, "")
    token = issue_token("m-1", secret=DEFAULT_JWT_SECRET, now=T0)
    model = OpttyModel(DEFAULT_JWT_SECRET)
    merchant = model.authenticate(world.session("default"), header.format(t=token))
    assert merchant.merchant_id == "m-1"
