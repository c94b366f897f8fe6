"""Model → JSON shapes of the contract (docs/api.md, "Object shapes").

Functions take objects whose relations the caller has already loaded with
``select_related``/``prefetch_related``; none of them queries on its own, so a list
endpoint costs the same number of queries at any size.
"""

from typing import Any

from backend.models import City, Event, EventRSVP, Organization, Ticket, TicketTier, User
from backend.money import money
from backend.services.eligibility import Eligibility
from backend.services.my_status import Holdings, TierRemaining


def user_data(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "email_verified": user.email_verified,
        "is_active": user.is_active,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "preferred_name": user.preferred_name,
        "pronouns": user.pronouns,
        "display_name": user.display_name,
        "bio": user.bio,
        "language": user.language,
        "totp_active": False,
        "referral_code": None,
        "profile_picture_url": None,
        "profile_picture_thumbnail_url": None,
        "profile_picture_preview_url": None,
    }


def city_data(city: City | None) -> dict[str, Any] | None:
    if city is None:
        return None
    return {"id": city.id, "name": city.name, "country": city.country, "admin_name": city.admin_name}


def organization_brief(org: Organization) -> dict[str, Any]:
    """The organization as nested in an event."""
    return {
        "id": str(org.id),
        "name": org.name,
        "slug": org.slug,
        "description": org.description,
        "visibility": org.visibility,
        "logo": None,
        "cover_art": None,
        "accept_membership_requests": org.accept_membership_requests,
        "contact_method": "email",
        "contact_email": org.contact_email,
        "is_stripe_connected": False,
        "platform_fee_percent": "3.00",
    }


def organization_data(org: Organization) -> dict[str, Any]:
    """The organization as the dashboard lists it (docs/api.md, "Object shapes")."""
    data = organization_brief(org)
    data.update(
        {
            "city": city_data(org.city),
            "tags": [],
            "instagram_url": None,
            "facebook_url": None,
            "bluesky_url": None,
            "telegram_url": None,
            "website_url": None,
            "membership_refund_policy": None,
            "membership_grace_period_days": 7,
            "membership_subscription_revival_window_days": 30,
        }
    )
    return data


def event_timezone(event: Event) -> str:
    return event.city.timezone if event.city_id and event.city else "UTC"


def minimal_event(event: Event) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "slug": event.slug,
        "name": event.name,
        "start": event.start,
        "end": event.end,
        "is_open_ended": False,
        "timezone": event_timezone(event),
        "logo": None,
        "cover_art": None,
        "venue": None,
        "logo_thumbnail_url": None,
        "cover_art_thumbnail_url": None,
    }


def event_in_list(event: Event, attendee_count: int = 0) -> dict[str, Any]:
    """An event as lists show it; ``attendee_count`` comes from one annotated query."""
    capacity = event.max_attendees
    return {
        "id": str(event.id),
        "name": event.name,
        "slug": event.slug,
        "description": event.description,
        "event_type": event.event_type,
        "visibility": event.visibility,
        "status": event.status,
        "organization": organization_brief(event.organization),
        "start": event.start,
        "end": event.end,
        "is_open_ended": False,
        "timezone": event_timezone(event),
        "requires_ticket": event.requires_ticket,
        "max_attendees": capacity,
        "max_tickets_per_user": event.max_tickets_per_user,
        "waitlist_open": event.waitlist_open,
        "attendee_count": attendee_count,
        "is_full": bool(capacity) and attendee_count >= capacity,
        "seats_held": 0,
        "rsvp_before": event.rsvp_before,
        "apply_before": event.apply_before,
        "accept_invitation_requests": False,
        "accept_rsvp_notes": event.accept_rsvp_notes,
        "can_attend_without_login": event.can_attend_without_login,
        "require_ticket_names": event.require_ticket_names,
        "requires_full_profile": event.requires_full_profile,
        "potluck_open": False,
        "is_virtual": False,
        "city": city_data(event.city),
        "venue": None,
        "event_series": None,
        "tags": [],
        "is_bookmarked": False,
        "visibility_settings": {
            "show_attendee_count": True,
            "show_capacity": True,
            "show_attendee_list": False,
            "show_pronoun_distribution": False,
        },
        "cancellation_reason": None,
        "created_at": event.created_at,
        "updated_at": event.updated_at,
        "logo": None,
        "cover_art": None,
        "logo_thumbnail_url": None,
        "cover_art_thumbnail_url": None,
    }


def event_detail(event: Event, attendee_count: int = 0) -> dict[str, Any]:
    data = event_in_list(event, attendee_count)
    data.update(
        {
            "address": event.address,
            "location_maps_url": None,
            "location_maps_embed": None,
            "check_in_starts_at": None,
            "check_in_ends_at": None,
            "schedule": [],
            "vat_country_code": None,
            "effective_vat_country": None,
            "vat_country_mismatch": False,
        }
    )
    return data


def tier_data(tier: TicketTier, can_purchase: bool) -> dict[str, Any]:
    total_available = None if tier.total_quantity is None else max(0, tier.total_quantity - tier.quantity_sold)
    return {
        "id": str(tier.id),
        "event_id": str(tier.event_id),
        "name": tier.name,
        "description": tier.description,
        "price": money(tier.price),
        "price_type": tier.price_type,
        "pwyc_min": money(tier.pwyc_min),
        "pwyc_max": money(tier.pwyc_max),
        "currency": tier.currency,
        "payment_method": tier.payment_method,
        "purchasable_by": tier.purchasable_by,
        "sales_start_at": tier.sales_start_at,
        "sales_end_at": tier.sales_end_at,
        "total_available": total_available,
        "max_tickets_per_user": tier.max_tickets_per_user,
        "seat_assignment_mode": "none",
        "display_order": tier.display_order,
        "manual_payment_instructions": tier.manual_payment_instructions,
        "allow_user_cancellation": False,
        "cancellation_deadline_hours": None,
        "restricted_to_membership_tiers": [],
        "venue": None,
        "sector": None,
        "can_purchase": can_purchase,
        "invoicing_available": False,
        "refund_policy": None,
        "seat_pricing": None,
    }


def ticket_data(ticket: Ticket, tier_can_purchase: bool = True) -> dict[str, Any]:
    """A user's own ticket; needs ``tier``, ``event`` (with ``city``) and ``user`` loaded."""
    return {
        "id": str(ticket.id),
        "status": ticket.status,
        "guest_name": ticket.guest_name or ticket.user.display_name,
        "price_paid": money(ticket.price_paid),
        "discount_amount": None,
        "created_at": ticket.created_at,
        "checked_in_at": ticket.checked_in_at,
        "tier": tier_data(ticket.tier, tier_can_purchase),
        "event": minimal_event(ticket.event),
        "payment": None,
        "seat": None,
        "apple_pass_available": False,
        "google_pass_available": False,
        "pdf_url": None,
        "pkpass_url": None,
        "series_pass": None,
    }


def eligibility_data(eligibility: Eligibility) -> dict[str, Any]:
    """The eligibility object (docs/api.md, "Eligibility"): every key always present, in the contract's order."""
    return {
        "allowed": eligibility.allowed,
        "event_id": str(eligibility.event_id),
        "reason": eligibility.reason,
        "reason_code": eligibility.reason_code,
        "next_step": eligibility.next_step,
        "questionnaires_missing": eligibility.questionnaires_missing,
        "questionnaires_pending_review": eligibility.questionnaires_pending_review,
        "questionnaires_failed": eligibility.questionnaires_failed,
        "retry_on": eligibility.retry_on,
        "missing_profile_fields": eligibility.missing_profile_fields,
        "pending_offers_count": None,
        "next_batch_at": None,
        "waitlist_position": None,
        "active_offer_expires_at": None,
        "event_remaining": eligibility.event_remaining,
    }


def rsvp_status_data(rsvp: EventRSVP) -> dict[str, Any]:
    """The RSVP as my-status and the RSVP endpoint show it (no id, as on the platform)."""
    return {"event_id": str(rsvp.event_id), "status": rsvp.status, "note": rsvp.note}


def tier_remaining_data(row: TierRemaining) -> dict[str, Any]:
    """One row of my-status's ``remaining_tickets``."""
    return {
        "tier_id": str(row.tier_id),
        "remaining": row.remaining,
        "sold_out": row.sold_out,
        "can_purchase": row.can_purchase,
    }


def my_status_data(status: Holdings | Eligibility) -> dict[str, Any]:
    """``GET /events/{id}/my-status``: the status shape for a user who has acted, else the eligibility object."""
    if isinstance(status, Eligibility):
        return eligibility_data(status)
    return {
        "tickets": [ticket_data(ticket, tier_can_purchase) for ticket, tier_can_purchase in status.tickets],
        "rsvp": rsvp_status_data(status.rsvp) if status.rsvp is not None else None,
        "can_purchase_more": status.can_purchase_more,
        "remaining_tickets": [tier_remaining_data(row) for row in status.remaining],
        "event_remaining": status.event_remaining,
        "feedback_questionnaires": [],
    }
