"""The dispatch order lifecycle as data: requested → approved → assigned → in_progress → completed,
and cancelled from any state before the car sets off. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OrderStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DISPATCHED = "dispatched"  # 0003's "a car was sent" (the simulator writes it): read as assigned


class OrderAction(StrEnum):
    APPROVE = "approve"
    ASSIGN = "assign"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"
    SET_ROUTE = "set_route"


S = OrderStatus
# action → (the states it may be taken from, the state it leads to; None: the state stays)
TRANSITIONS: dict[OrderAction, tuple[frozenset[OrderStatus], OrderStatus | None]] = {
    OrderAction.APPROVE: (frozenset({S.REQUESTED}), S.APPROVED),
    # assigning again (another car) is allowed until the car sets off
    OrderAction.ASSIGN: (frozenset({S.APPROVED, S.ASSIGNED, S.DISPATCHED}), S.ASSIGNED),
    OrderAction.START: (frozenset({S.ASSIGNED, S.DISPATCHED}), S.IN_PROGRESS),
    OrderAction.COMPLETE: (frozenset({S.IN_PROGRESS, S.DISPATCHED}), S.COMPLETED),
    OrderAction.CANCEL: (frozenset({S.REQUESTED, S.APPROVED, S.ASSIGNED, S.DISPATCHED}), S.CANCELLED),
    OrderAction.SET_ROUTE: (frozenset({S.REQUESTED, S.APPROVED, S.ASSIGNED, S.DISPATCHED}), None),
}

# statuses in which the order holds its car for its window
HOLDS_CAR = frozenset({S.ASSIGNED, S.DISPATCHED, S.IN_PROGRESS})


@dataclass(frozen=True, slots=True, kw_only=True)
class IllegalTransition:
    status: OrderStatus
    action: OrderAction
    reason: str


def transition(status: OrderStatus, action: OrderAction) -> OrderStatus | IllegalTransition:
    """The status after ``action``, or why the action is not allowed from ``status``."""
    allowed_from, to = TRANSITIONS[action]
    if status not in allowed_from:
        allowed = ", ".join(sorted(s.value for s in allowed_from))
        return IllegalTransition(
            status=status,
            action=action,
            reason=f"cannot {action.value.replace('_', ' ')} an order that is {status.value}"
            f" (allowed from: {allowed})",
        )
    return status if to is None else to
