"""Settings: packaged defaults < the dataset folder's < a user's settings folder < environment
variables < run config."""

from mlplatform.config.settings import (
    PlatformSettings,
    SettingsError,
    load_settings,
)

__all__ = ["PlatformSettings", "SettingsError", "load_settings"]
