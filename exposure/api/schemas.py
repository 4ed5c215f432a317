"""Component schemas of the OpenAPI document (:mod:`exposure.api.openapi` holds the paths)."""

from __future__ import annotations

from exposure import JsonObject
from exposure.api.resolution_body import MAX_PASSWORD_HASH
from exposure.customers.enrolment import MAX_CUSTOMER_ID
from exposure.triage.resolution import MAX_REASON, RESOLUTIONS

TIMESTAMP: JsonObject = {"type": "string", "format": "date-time"}
NULLABLE_STRING: JsonObject = {"type": "string", "nullable": True}


def ref(name: str) -> JsonObject:
    """A reference to one of :data:`SCHEMAS`."""
    return {"$ref": f"#/components/schemas/{name}"}


EXPOSURE: JsonObject = {
    "type": "object",
    "description": "An exposure; identifiers appear only as masked hints.",
    "properties": {
        "exposure_id": {"type": "string", "format": "uuid"},
        "customer_id": {"type": "string"},
        "identifier_kind": {"type": "string", "enum": ["email", "login_id", "phone"]},
        "identifier_hint": {"type": "string", "example": "ta***@example.jp"},
        "match_strength": {"type": "string", "enum": ["strict", "variant"]},
        "password_status": {
            "type": "string",
            "enum": ["live", "tweaked", "stale", "unknown", "absent"],
        },
        "action": {"type": "string", "enum": ["force_reset", "notify", "none"]},
        "severity": {"type": "string"},
        "leak_type": {"type": "string"},
        "site_domain": NULLABLE_STRING,
        "source": {"type": "string"},
        "first_seen": TIMESTAMP,
        "last_seen": TIMESTAMP,
        "occurrences": {"type": "integer"},
        "state": {"type": "string", "example": "open"},
        "reason": {"type": "string"},
        "recommended_actions": {"type": "array", "items": {"type": "string"}},
        "has_pin": {"type": "boolean"},
        "decided_at": TIMESTAMP,
        "resolution": {"type": "string", "enum": list(RESOLUTIONS), "nullable": True},
        "resolved_at": {**TIMESTAMP, "nullable": True},
        "resolved_by": NULLABLE_STRING,
    },
    "required": ["exposure_id", "customer_id", "action", "state", "first_seen"],
}

CUSTOMER: JsonObject = {
    "type": "object",
    "additionalProperties": False,
    "required": ["customer_id"],
    "properties": {
        "customer_id": {"type": "string", "minLength": 1, "maxLength": MAX_CUSTOMER_ID},
        "email": NULLABLE_STRING,
        "login_id": NULLABLE_STRING,
        "phone": NULLABLE_STRING,
        "password_hash": {
            **NULLABLE_STRING,
            "description": "hash of the current password: argon2, bcrypt, scrypt, PBKDF2 or "
            "sha256/sha512_crypt (see the README); a refused hash enrols the identifiers "
            "without it",
        },
    },
}

CASE: JsonObject = {
    "type": "object",
    "description": "A case: one customer incident, the exposures one reset (or notice) covers.",
    "required": [
        "case_id",
        "customer_id",
        "state",
        "action",
        "severity",
        "opened_at",
        "exposure_count",
    ],
    "properties": {
        "case_id": {"type": "string", "format": "uuid"},
        "customer_id": {"type": "string"},
        "state": {"type": "string", "enum": ["open", "resolved"]},
        "action": {"type": "string", "enum": ["force_reset", "notify", "none"]},
        "severity": {"type": "string"},
        "opened_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "force_reset_at": {
            **TIMESTAMP,
            "nullable": True,
            "description": "When the action became force_reset (time-to-reset counts from here)",
        },
        "resolution": {"type": "string", "enum": list(RESOLUTIONS), "nullable": True},
        "resolved_at": {**TIMESTAMP, "nullable": True},
        "resolved_by": NULLABLE_STRING,
        "exposure_count": {"type": "integer"},
    },
}

CASE_EXPOSURE: JsonObject = {
    "type": "object",
    "description": "An exposure of the case (masked hint only) and its number of sightings",
    "properties": {
        "exposure_id": {"type": "string", "format": "uuid"},
        "identifier_kind": {"type": "string"},
        "identifier_hint": {"type": "string"},
        "password_status": {"type": "string"},
        "action": {"type": "string"},
        "severity": {"type": "string"},
        "leak_type": {"type": "string"},
        "site_domain": NULLABLE_STRING,
        "source": {"type": "string"},
        "state": {"type": "string"},
        "first_seen": TIMESTAMP,
        "last_seen": TIMESTAMP,
        "occurrences": {"type": "integer"},
        "sightings": {"type": "integer"},
    },
}

CASE_EVENT: JsonObject = {
    "type": "object",
    "description": "A webhook event that announced the case (its opening or escalation)",
    "properties": {
        "event_id": {"type": "string"},
        "event_type": {"type": "string"},
        "state": {"type": "string", "enum": ["pending", "delivered", "failed", "dead"]},
        "exposure_id": NULLABLE_STRING,
        "attempts": {"type": "integer"},
        "created_at": TIMESTAMP,
        "delivered_at": {**TIMESTAMP, "nullable": True},
    },
}

# The shapes of two common schemes, so generated examples are hashes the monitor accepts;
# enrolment's every scheme is accepted (argon2, bcrypt, scrypt, PBKDF2, sha256/sha512_crypt).
_HASH_EXAMPLES: list[JsonObject] = [
    {"type": "string", "pattern": r"^\$2[aby]\$(0[4-9]|1[0-2])\$[./A-Za-z0-9]{53}$"},
    {"type": "string", "pattern": r"^\$6\$[./0-9A-Za-z]{8,16}\$[./0-9A-Za-z]{86}$"},
]


def _resolution(resolution: str, *, password_hash: bool) -> JsonObject:
    properties: JsonObject = {
        "resolution": {"type": "string", "enum": [resolution]},
        "resolved_by": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": "Who or what resolved it (printable characters, not blank)",
        },
        "resolved_at": {**TIMESTAMP, "description": "Default: now"},
        "reason": {
            "type": "string",
            "maxLength": MAX_REASON,
            "description": "Why (kept in the audit log; the console asks for one to dismiss)",
        },
    }
    if password_hash:
        properties["password_hash"] = {
            "anyOf": _HASH_EXAMPLES,
            "maxLength": MAX_PASSWORD_HASH,
            "description": "The hash of the customer's new password, in any scheme enrolment "
            "accepts (argon2, bcrypt, scrypt, PBKDF2, sha256/sha512_crypt). Without it the "
            "enrolled hash counts as superseded at the reset, until the broker enrols the new one",
        }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["resolution", "resolved_by"],
        "properties": properties,
    }


SCHEMAS: JsonObject = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Exposure": EXPOSURE,
    "ExposurePage": {
        "type": "object",
        "required": ["exposures", "next_cursor"],
        "properties": {
            "exposures": {"type": "array", "items": ref("Exposure")},
            "next_cursor": {
                **NULLABLE_STRING,
                "description": "Pass back as `cursor` for the next page; null on the last page",
            },
        },
    },
    "Sighting": {
        "type": "object",
        "properties": {
            "source": {"type": "string"},
            "file": {"type": "string"},
            "line": {"type": "integer"},
            "leak_type": {"type": "string"},
            "seen_at": TIMESTAMP,
        },
    },
    "ExposureDetail": {
        "allOf": [
            ref("Exposure"),
            {
                "type": "object",
                "properties": {
                    "sightings": {"type": "array", "items": ref("Sighting")},
                    "sightings_total": {"type": "integer"},
                    "sightings_truncated": {"type": "boolean"},
                },
            },
        ]
    },
    # One shape per resolution, on both resolution routes (exposure and case): a new
    # password_hash goes with reset_completed only.
    "Resolution": {
        "oneOf": [
            _resolution("reset_completed", password_hash=True),
            _resolution("dismissed", password_hash=False),
        ]
    },
    "Case": CASE,
    "CasePage": {
        "type": "object",
        "required": ["cases", "next_cursor"],
        "properties": {
            "cases": {"type": "array", "items": ref("Case")},
            "next_cursor": {
                **NULLABLE_STRING,
                "description": "Pass back as `cursor` for the next page; null on the last page",
            },
        },
    },
    "CaseDetail": {
        "allOf": [
            ref("Case"),
            {
                "type": "object",
                "required": ["exposures", "exposures_truncated", "events"],
                "properties": {
                    "exposures": {"type": "array", "items": CASE_EXPOSURE},
                    "exposures_truncated": {"type": "boolean"},
                    "events": {"type": "array", "items": CASE_EVENT},
                },
            },
        ]
    },
    "Customer": CUSTOMER,
    "EnrolmentRequest": {
        "oneOf": [
            {"type": "array", "items": ref("Customer")},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["customers"],
                "properties": {"customers": {"type": "array", "items": ref("Customer")}},
            },
        ]
    },
    "EnrolmentSummary": {
        "type": "object",
        "properties": {
            "rows": {"type": "integer"},
            "customers": {"type": "integer"},
            "identifiers": {"type": "object", "additionalProperties": {"type": "integer"}},
            "rejected": {"type": "integer"},
            "rejected_by_reason": {"type": "object", "additionalProperties": {"type": "integer"}},
            "rejected_rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer", "description": "0-based"},
                        "reason": {"type": "string"},
                    },
                },
            },
            "rejected_rows_truncated": {"type": "boolean"},
            "hashes_refused": {"type": "object", "additionalProperties": {"type": "integer"}},
            "hashes_refused_rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer", "description": "0-based"},
                        "reason": {"type": "string"},
                    },
                },
            },
            "hash_refusal_help": {
                "type": "object",
                "additionalProperties": {"type": "string"},
            },
            "database": {"type": "object"},
        },
    },
    "Status": {"type": "object", "properties": {"status": {"type": "string"}}},
    "AuditEntry": {
        "type": "object",
        "required": ["id", "at", "channel", "actor", "action", "target", "detail"],
        "properties": {
            "id": {"type": "integer"},
            "at": TIMESTAMP,
            "channel": {"type": "string", "enum": ["console", "api", "cli"]},
            "actor": {
                "type": "string",
                "description": "The token's name (console, API) or the operating-system user (CLI)",
            },
            "actor_token_id": NULLABLE_STRING,
            "action": {"type": "string", "description": "e.g. exposure.resolved, token.revoked"},
            "target": {
                "type": "string",
                "description": "Exposure, event or token id; cust_... for a deleted customer",
            },
            "detail": {"type": "object"},
        },
    },
    "AuditPage": {
        "type": "object",
        "required": ["entries", "next_cursor"],
        "properties": {
            "entries": {"type": "array", "items": ref("AuditEntry")},
            "next_cursor": {
                **NULLABLE_STRING,
                "description": "Pass back as `cursor` for the next page; null on the last page",
            },
        },
    },
}
