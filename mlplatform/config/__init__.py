"""Settings: packaged defaults < a user's settings folder < environment variables < run config."""

from mlplatform.config.settings import (
    PlatformSettings,
    SettingsError,
    load_settings,
    resolve_contract_path,
)

__all__ = ["PlatformSettings", "SettingsError", "load_settings", "resolve_contract_path"]
