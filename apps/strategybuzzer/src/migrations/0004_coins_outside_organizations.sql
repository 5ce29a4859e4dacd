-- Coins belong to the players, not to the organization that runs the game: their wallets, the
-- source starter coins are minted from and the revenue spends go to are accounts of the ledger's
-- platform book (outside any organization, ledger migration 0007), found by owner, unit and code
-- (`coins`, `wallet` / `strategybuzzer.source` / `strategybuzzer.revenue`). The house keeps only
-- what it is for: which organization's admins run the game (and sells the coin packs).
alter table house drop column source_account_id;
alter table house drop column revenue_account_id;
