"""An order's verdict waits for its own car's data, not for the newest fix of any car in the round."""

from __future__ import annotations

import numpy as np

from rules.alert import Alert, AlertKind, Anchor, Severity
from rules.catalogue import Evaluation
from rules.worker import judged_on_own_data
from tracks.match import DispatchOrder, orders_table

S = 1_000_000
GRACE_US = 900 * S


def _order(order_id: int, vehicle_id: int, window_end_us: int) -> DispatchOrder:
    empty = np.zeros(0, dtype=np.float64)
    return DispatchOrder(
        order_id=order_id,
        vehicle_id=vehicle_id,
        window_start_us=window_end_us - 3600 * S,
        window_end_us=window_end_us,
        origin_lon=119.9,
        origin_lat=31.8,
        destination_lon=119.95,
        destination_lat=31.78,
        route_lon=empty,
        route_lat=empty,
    )


def _alert(kind: AlertKind, vehicle_id: int, anchor: Anchor, value: int) -> Alert:
    return Alert(
        kind=kind,
        severity=Severity.HIGH,
        vehicle_id=vehicle_id,
        start_us=1_000 * S,
        end_us=2_000 * S,
        anchor=anchor,
        anchor_value=value,
    )


def test_an_order_is_judged_only_once_its_own_car_reported_past_the_window() -> None:
    end = 10_000 * S
    orders = orders_table([_order(1, 7, end), _order(2, 8, end)])
    lagging = _alert(AlertKind.WRONG_DESTINATION, 7, Anchor.ORDER, 1)  # car 7 reported until end + 60 s
    caught_up = _alert(AlertKind.WRONG_DESTINATION, 8, Anchor.ORDER, 2)  # car 8 past the grace
    trip_alert = _alert(AlertKind.NO_ORDER, 7, Anchor.TRIP, 1_000 * S)  # not about an order: kept
    evaluation = Evaluation(alerts=(lagging, caught_up, trip_alert), failures=())
    kept = judged_on_own_data(evaluation, orders, [7, 8], [end + 60 * S, end + GRACE_US], GRACE_US)
    assert kept.alerts == (caught_up, trip_alert)
    # once car 7's data passes its order's window and grace, its verdict stands
    later = judged_on_own_data(evaluation, orders, [7, 8], [end + GRACE_US + S] * 2, GRACE_US)
    assert later.alerts == evaluation.alerts


def test_a_car_outside_the_round_is_not_judged_an_order_outside_the_context_is_left_alone() -> None:
    orders = orders_table([_order(1, 7, 10_000 * S)])
    evaluation = Evaluation(
        alerts=(
            _alert(AlertKind.ORDER_NOT_EXECUTED, 9, Anchor.ORDER, 1),  # car 9 is not in this round
            _alert(AlertKind.WRONG_DESTINATION, 7, Anchor.ORDER, 99),  # order 99 is not in the context
        ),
        failures=(),
    )
    assert judged_on_own_data(evaluation, orders, [7], [20_000 * S], GRACE_US).alerts == (
        evaluation.alerts[1],
    )
