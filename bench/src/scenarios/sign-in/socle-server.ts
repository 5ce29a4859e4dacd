/**
 * Child process: Socle with the identity module, rate limits off (the load signs in far more often
 * than they allow), and the mail module it depends on. At start it creates the bench user.
 * Started by the harness.
 */
import { createIdentityModule, createSocle } from 'socle';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig, ensureBenchUser } from '../shared/socle-setup.js';

runServerChild(async (settings) => {
  const socle = await createSocle({
    config: benchSocleConfig(settings),
    modules: [createIdentityModule({ rateLimits: false }), benchMailModule()],
    ...(settings.dialect === 'pglite' ? { inMemory: true } : {}),
  });
  try {
    await ensureBenchUser(socle.app);
    const url = await socle.listen();
    return {
      url,
      async close() {
        await socle.close();
      },
    };
  } catch (error) {
    await socle.close();
    throw error;
  }
});
