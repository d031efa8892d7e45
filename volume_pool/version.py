"""Version of the installed package (pbr reads it from git or metadata)."""

import pbr.version

version_info = pbr.version.VersionInfo('volume-pool')


def version_string():
    return version_info.version_string()
