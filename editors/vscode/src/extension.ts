// The SGL extension: starts `sglc lsp` and connects VS Code to it (vscode-languageclient).
// Highlighting, brackets, indentation and snippets are declarative (package.json).

import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

import { serverCommand, ServerSettings, startFailureMessage } from "./server";

let client: LanguageClient | undefined;

function settings(): ServerSettings {
  const config = vscode.workspace.getConfiguration("sgl.server");
  return {
    path: config.get<string>("path", "sglc"),
    python: config.get<string>("python", ""),
    args: config.get<string[]>("args", []),
  };
}

async function start(): Promise<void> {
  const cmd = serverCommand(settings());
  const serverOptions: ServerOptions = {
    command: cmd.command,
    args: cmd.args,
    transport: TransportKind.stdio,
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "sgl" },
      { scheme: "untitled", language: "sgl" },
    ],
    outputChannelName: "SGL Language Server",
  };
  client = new LanguageClient("sgl", "SGL Language Server", serverOptions, clientOptions);
  try {
    await client.start();
  } catch (error) {
    client = undefined;
    void vscode.window.showErrorMessage(startFailureMessage(cmd, error));
  }
}

async function restart(): Promise<void> {
  if (client) {
    await client.stop();
    client = undefined;
  }
  await start();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(
    vscode.commands.registerCommand("sgl.restartServer", restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("sgl.server")) {
        void restart();
      }
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  if (client) {
    await client.stop();
  }
}
