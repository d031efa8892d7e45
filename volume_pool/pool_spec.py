"""Pool definitions read from the configuration, and their validation.

A bad pool configuration must stop start-up with one line that names the
option, so every check here raises :class:`~volume_pool.exception.ConfigError`
with the section and option in its message.
"""

import dataclasses
import re

from oslo_config import cfg
from oslo_utils import uuidutils

from volume_pool import config
from volume_pool import exception
from volume_pool.conf import pool as pool_conf

_POOL_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """What one pool should hold; rebuilt from the config on every run."""

    name: str
    cluster: str | None
    snapshot_id: str
    # With ``auto``, ``target`` is max_ready: the most the pool ever keeps
    # (so code that reads it as a number stays right); the target of the
    # moment comes from volume_pool.sizing.
    target: int
    max_creating: int = 10
    max_miss_creates: int = pool_conf.MAX_MISS_CREATES_DEFAULT
    size: int | None = None
    volume_type: str | None = None
    availability_zone: str | None = None
    name_prefix: str | None = None
    auto: bool = False
    min_ready: int = 0
    max_ready: int | None = None
    max_ready_gb: int | None = None
    idle_ttl: int = 0

    @property
    def volume_name_prefix(self):
        return self.name_prefix or 'volume-pool-%s-' % self.name

    @property
    def target_label(self):
        """The target as configured: a number or ``auto``."""
        return pool_conf.AUTO if self.auto else str(self.target)


def _read(conf, section, option, override=None):
    """An option of a pool section; a per-cluster section wins if it sets
    the option in a file."""
    if override is not None:
        location = conf.get_location(option, group=override)
        if location is not None and location.location == cfg.Locations.user:
            section = override
    try:
        return conf[section][option]
    except (cfg.ConfigSourceValueError, ValueError) as exc:
        raise exception.ConfigError(
            reason=config.describe_invalid(section, option, exc))


def load_specs(conf):
    """Validate ``[volume_pool] enabled_pools`` and return ``{name: spec}``.

    Registers each pool's option group on first use, so this is also the
    step that makes ``[pool:<name>]`` readable.
    """
    max_total_gb(conf)  # a bad global cap stops start-up like a pool's
    names = [n.strip() for n in conf.volume_pool.enabled_pools if n.strip()]
    seen = set()
    pools = {}
    sections = set(conf.list_all_sections())
    for name in names:
        if not _POOL_NAME_RE.match(name):
            raise exception.ConfigError(
                reason='[volume_pool] enabled_pools: invalid pool name %r '
                       '(letters, digits, "_", "." and "-", at most 64)'
                       % name)
        if name.lower() in seen:
            # Cinder's metadata filter and MariaDB compare without case.
            raise exception.ConfigError(
                reason='[volume_pool] enabled_pools: pool %r is listed twice '
                       '(names are compared without case)' % name)
        seen.add(name.lower())
        section = pool_conf.group_name(name)
        override = (pool_conf.group_name(name, conf.cluster)
                    if conf.cluster else None)
        if override not in sections:
            override = None
        if section not in sections and override is None:
            raise exception.ConfigError(
                reason='[volume_pool] enabled_pools: pool %r has no [%s] '
                       'section' % (name, section))
        pool_conf.register_pool_opts(conf, name)
        if override is not None:
            pool_conf.register_pool_opts(conf, name, conf.cluster)

        def read(option, section=section, override=override):
            return _read(conf, section, option, override)

        snapshot_id = read('snapshot_id')
        if not snapshot_id:
            raise exception.ConfigError(
                reason='[%s] snapshot_id is required' % section)
        if not uuidutils.is_uuid_like(snapshot_id):
            raise exception.ConfigError(
                reason='[%s] snapshot_id: %r is not a UUID'
                       % (section, snapshot_id))
        pools[name] = PoolSpec(
            name=name,
            cluster=conf.cluster or None,
            snapshot_id=snapshot_id,
            max_creating=read('max_creating'),
            max_miss_creates=read('max_miss_creates'),
            size=read('size'),
            volume_type=read('volume_type'),
            availability_zone=read('availability_zone'),
            name_prefix=read('name_prefix'),
            **_sizing(section, read))
    return pools


def _sizing(section, read):
    """Target, bounds, caps and idle TTL of a pool, checked together."""
    target = read('target')
    auto = target == pool_conf.AUTO
    min_ready, max_ready = read('min_ready'), read('max_ready')
    if auto and max_ready is None:
        raise exception.ConfigError(
            reason='[%s] target = auto needs max_ready (its upper bound)'
                   % section)
    if max_ready is not None and min_ready > max_ready:
        raise exception.ConfigError(
            reason='[%s] min_ready (%d) is above max_ready (%d)'
                   % (section, min_ready, max_ready))
    if not auto and min_ready > target:
        # An idle pool would keep more than a busy one.
        raise exception.ConfigError(
            reason='[%s] min_ready (%d) is above target (%d)'
                   % (section, min_ready, target))
    return {'target': max_ready if auto else target, 'auto': auto,
            'min_ready': min_ready, 'max_ready': max_ready,
            'max_ready_gb': read('max_ready_gb'),
            'idle_ttl': read('idle_ttl')}


def max_total_gb(conf):
    """``[volume_pool] max_total_gb``, or a one-line ConfigError."""
    return _read(conf, 'volume_pool', 'max_total_gb')


def unused_pool_sections(conf):
    """Pool sections in the config files that no enabled pool uses.

    A per-cluster section of an enabled pool counts as used, whatever its
    cluster: one file may serve the managers of several clusters.
    """
    enabled = {n.strip() for n in conf.volume_pool.enabled_pools}
    return sorted(
        s for s in conf.list_all_sections()
        if s.startswith(pool_conf.GROUP_PREFIX) and
        s[len(pool_conf.GROUP_PREFIX):].split('@', 1)[0] not in enabled)


def case_clash(names, recorded):
    """The first configured pool whose name matches a pool with volumes
    only without case, as ``(configured, recorded)``, or None.

    Cinder's metadata filter and MariaDB compare names without case, so
    the two would be one pool to them and two to this service: a manager
    refuses to start rather than sync one as the other.
    """
    exact = set(recorded)
    by_lower = {name.lower(): name for name in recorded}
    for name in sorted(names):
        if name not in exact and name.lower() in by_lower:
            return name, by_lower[name.lower()]
    return None
