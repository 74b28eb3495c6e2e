module gortcrashbench

go 1.19
