"""What the claimer saw for one claim key: the invariant checker's input.

Plain data (JSON-able through :func:`dataclasses.asdict`), so a run can be
written out and checked again, and the checker tested on hand-made keys.
"""

import dataclasses

# What the claimer meant to do with a volume once it had one.
CONFIRM = 'confirm'
RELEASE = 'release'
ABANDON = 'abandon'  # neither: the lease runs out and sync takes it back
ATTACH = 'attach'    # attach it in Cinder: sync then makes it the caller's
KEEP = 'keep'        # nothing to do: the volume was the caller's at once
PLANS = (CONFIRM, RELEASE, ABANDON, ATTACH, KEEP)

# How it ended, as far as the claimer knows.
UNANSWERED = 'unanswered'  # no volume was ever answered for the key
CONFIRMED = 'confirmed'    # confirm answered: the volume is the caller's
RELEASED = 'released'      # release answered: the volume went back
ABANDONED = 'abandoned'    # left to its lease, or the lease ran out first
UNCERTAIN = 'uncertain'    # confirm or release never answered
ATTACHED = 'attached'      # attached in Cinder: the caller's for good
KEPT = 'kept'              # claimed without a lease: the caller's at once
OUTCOMES = (UNANSWERED, CONFIRMED, RELEASED, ABANDONED, UNCERTAIN,
            ATTACHED, KEPT)
# Outcomes after which the volume stays with the caller for good.
KEEPING = frozenset((CONFIRMED, ATTACHED, KEPT))


@dataclasses.dataclass
class KeyRecord:
    """One claim key; times are wall-clock seconds (time.time())."""

    key: str
    pool: str
    plan: str
    sent_at: float
    # (volume_id, answered_at) for every answer the key got.
    answers: list = dataclasses.field(default_factory=list)
    # Error class names, in the order they were raised.
    errors: list = dataclasses.field(default_factory=list)
    attempts: int = 0
    outcome: str = UNANSWERED
    # When the release that answered was first sent.
    released_at: float | None = None
    # False: claimed without a key; ``key`` is then the one the client
    # made, learnt from the answer or the timeout (a placeholder until).
    keyed: bool = True
    # The project the volume was claimed into; None: the pool's own.
    project: str | None = None
    # The answer's lease_expires_at (wall-clock seconds); None: no lease.
    lease_until: float | None = None
    # The volume name the claim asked for; None: not checked.
    name: str | None = None

    @property
    def volume_ids(self):
        return sorted({volume_id for volume_id, _ in self.answers})

    @property
    def first_answer_at(self):
        return min((at for _, at in self.answers), default=None)

    @classmethod
    def from_dict(cls, values):
        values = dict(values)
        values['answers'] = [tuple(a) for a in values.get('answers', ())]
        return cls(**values)
