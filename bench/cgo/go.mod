module gortcgo

go 1.19
