"""Built-in surface definitions, one TOML file each (shipped as sgdtui.surfaces)."""
