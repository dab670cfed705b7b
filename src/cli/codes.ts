/** Codes the donjon command itself reports (beside those of the libraries it calls). */
export const cliErrorCodes = ['ERR_USAGE', 'ERR_INTERRUPTED', 'ERR_INTERNAL'] as const;
